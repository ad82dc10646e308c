//! Signed approvals, as git signs commits with SSH keys: an approver signs a plan's canonical
//! text with `ssh-keygen -Y sign -n alma-cohort` (agents, passphrases and hardware keys work),
//! and an OpenSSH `allowed_signers` file — owned by someone other than the signers — says which
//! key is which person. Signatures are verified here, in process (RustCrypto's `ssh-key`), every
//! time an approval is recorded or counted.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::error::Error;

/// The namespace every alma-cohort signature is made in (`ssh-keygen -Y sign -n alma-cohort`).
pub const NAMESPACE: &str = "alma-cohort";

/// One line of an `allowed_signers` file.
#[derive(Clone, Debug)]
pub struct Signer {
    pub principals: Vec<String>,
    /// `namespaces="…"`: `None` allows every namespace (as ssh-keygen does).
    pub namespaces: Option<Vec<String>>,
    pub valid_after: Option<DateTime<Utc>>,
    pub valid_before: Option<DateTime<Utc>>,
    pub key: PublicKey,
    pub line: usize,
}

/// Who a signature is by: the principal the file names for the key, and the key's fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub principal: String,
    /// Every principal the key's line names (the first is [`Verified::principal`]).
    pub principals: Vec<String>,
    pub fingerprint: String,
}

impl Verified {
    /// Whether the signer is `account`: a principal equal to it, or whose part before `@` is
    /// (`alice@example.edu` is the OS account `alice`), case aside.
    pub fn is(&self, account: &str) -> bool {
        let account = account.trim().to_lowercase();
        self.principals.iter().any(|p| {
            let p = p.to_lowercase();
            p == account || p.split('@').next() == Some(account.as_str())
        })
    }
}

fn bad_file(path: &Path, line: usize, message: String) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        line: Some(line),
        message,
    }
}

/// Splits a line into words; a double-quoted part (with its quotes) stays in its word.
fn words(line: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (None, false);
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    Ok(out)
}

fn is_key_type(word: &str) -> bool {
    word.starts_with("ssh-") || word.starts_with("ecdsa-sha2-") || word.starts_with("sk-")
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, with `Z` for UTC (ssh-keygen reads it in the
/// local time zone without; here always UTC, and said so in the docs).
fn timestamp(value: &str) -> Option<DateTime<Utc>> {
    let v = value.trim_end_matches(['Z', 'z']);
    let at = match v.len() {
        8 => NaiveDate::parse_from_str(v, "%Y%m%d").ok()?.and_hms_opt(0, 0, 0)?,
        12 => NaiveDateTime::parse_from_str(v, "%Y%m%d%H%M").ok()?,
        14 => NaiveDateTime::parse_from_str(v, "%Y%m%d%H%M%S").ok()?,
        _ => return None,
    };
    Some(at.and_utc())
}

/// Reads an OpenSSH `allowed_signers` file: `principal[,principal…] [options] keytype base64
/// [comment]` a line, `#` comments and blank lines skipped. Options: `namespaces="…"`,
/// `valid-after="…"`, `valid-before="…"`; `cert-authority` is refused (certificates are not
/// supported). Any line it cannot read refuses the file, naming the line.
pub fn read(path: &Path) -> Result<Vec<Signer>, Error> {
    let text = crate::text::read_text(path, crate::text::limit::SMALL).map_err(|e| Error::Input {
        path: path.to_path_buf(),
        line: None,
        message: format!("the allowed_signers file cannot be read: {e}"),
    })?;
    let mut signers = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let w = words(line).map_err(|m| bad_file(path, n, m))?;
        let principals: Vec<String> = w[0]
            .trim_matches('"')
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if principals.is_empty() {
            return Err(bad_file(path, n, "names no principal".into()));
        }
        let (options, rest) = match w.get(1) {
            Some(word) if !is_key_type(word) => (Some(*word), &w[2..]),
            _ => (None, &w[1..]),
        };
        let (mut namespaces, mut valid_after, mut valid_before) = (None, None, None);
        for option in options.map(split_options).unwrap_or_default() {
            let (name, value) = option.split_once('=').unwrap_or((option, ""));
            let value = value.trim_matches('"');
            match name.to_ascii_lowercase().as_str() {
                "namespaces" => namespaces = Some(value.split(',').map(|s| s.trim().to_string()).collect()),
                "valid-after" => {
                    valid_after =
                        Some(timestamp(value).ok_or_else(|| {
                            bad_file(path, n, format!("valid-after={value:?} is not YYYYMMDD[HHMM[SS]]"))
                        })?)
                }
                "valid-before" => {
                    valid_before = Some(timestamp(value).ok_or_else(|| {
                        bad_file(path, n, format!("valid-before={value:?} is not YYYYMMDD[HHMM[SS]]"))
                    })?)
                }
                "cert-authority" => {
                    return Err(bad_file(
                        path,
                        n,
                        "cert-authority: certificates are not supported; list each approver's own key".into(),
                    ));
                }
                other => {
                    return Err(bad_file(
                        path,
                        n,
                        format!("the option {other:?} is not one alma-cohort knows"),
                    ));
                }
            }
        }
        let (Some(kind), Some(data)) = (rest.first(), rest.get(1)) else {
            return Err(bad_file(
                path,
                n,
                "has no key (principals, options, then e.g. ssh-ed25519 AAAA…)".into(),
            ));
        };
        let key = PublicKey::from_openssh(&format!("{kind} {data}"))
            .map_err(|e| bad_file(path, n, format!("the key ({kind}) cannot be read: {e}")))?;
        signers.push(Signer {
            principals,
            namespaces,
            valid_after,
            valid_before,
            key,
            line: n,
        });
    }
    if signers.is_empty() {
        return Err(Error::Input {
            path: path.to_path_buf(),
            line: None,
            message: "lists no key: an approval could never count".into(),
        });
    }
    Ok(signers)
}

/// `a,b="c,d",e` → `a`, `b="c,d"`, `e`.
fn split_options(options: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in options.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&options[start..]);
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

/// Checks `signature` (an `-----BEGIN SSH SIGNATURE-----` text) over `message`: made in the
/// `alma-cohort` namespace, by a key `signers` lists for that namespace and at `at`, and true over
/// this very text. `Err` says which of these failed.
pub fn verify(signature: &str, message: &[u8], signers: &[Signer], at: DateTime<Utc>) -> Result<Verified, String> {
    let sig = SshSig::from_pem(signature.trim())
        .map_err(|e| format!("not an SSH signature (-----BEGIN SSH SIGNATURE-----): {e}"))?;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "the signature was made in namespace {:?}, not {NAMESPACE:?} (sign with ssh-keygen -Y sign -n {NAMESPACE})",
            sig.namespace()
        ));
    }
    let key = PublicKey::from(sig.public_key().clone());
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    // Every line that lists the key, as ssh-keygen reads them: the first that allows this
    // namespace now is the signer's.
    let lines: Vec<&Signer> = signers
        .iter()
        .filter(|s| s.key.key_data() == sig.public_key())
        .collect();
    if lines.is_empty() {
        return Err(format!(
            "the signature is by key {fingerprint}, which allowed_signers does not list"
        ));
    }
    let allows = |signer: &Signer| -> Result<(), String> {
        if let Some(spaces) = &signer.namespaces
            && !spaces.iter().any(|s| s == NAMESPACE || s == "*")
        {
            return Err(format!(
                "allowed_signers line {} lists key {fingerprint} for namespaces {spaces:?}, not {NAMESPACE:?}",
                signer.line
            ));
        }
        if signer.valid_after.is_some_and(|t| at < t) || signer.valid_before.is_some_and(|t| at >= t) {
            return Err(format!(
                "allowed_signers line {} does not let key {fingerprint} sign now (valid-after/valid-before)",
                signer.line
            ));
        }
        Ok(())
    };
    let signer = match lines.iter().find(|s| allows(s).is_ok()) {
        Some(s) => *s,
        None => return Err(allows(lines[0]).err().unwrap_or_default()),
    };
    signer.key.verify(NAMESPACE, message, &sig).map_err(|_| {
        format!("the signature by {fingerprint} is not over this plan's text (it was made over another text, or the plan changed since)")
    })?;
    Ok(Verified {
        principal: signer.principals[0].clone(),
        principals: signer.principals.clone(),
        fingerprint,
    })
}

/// Signs `text` with the key at `key` through `ssh-keygen -Y sign` (so an agent, a passphrase
/// prompt or a hardware key work as they do for git), in a private temporary folder; the
/// signature's text.
pub fn sign_with_ssh_keygen(key: &Path, text: &str) -> Result<String, Error> {
    let usage = |m: String| Error::Usage(format!("--ssh-key {}: {m}", key.display()));
    let bytes = crate::text::read_bytes(key, crate::text::limit::KEY).map_err(|e| usage(e.to_string()))?;
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(100)]).to_string();
    let private = head.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----");
    // A public key names the agent's private one (ssh-keygen -Y sign -f key.pub).
    let public = PublicKey::from_openssh(String::from_utf8_lossy(&bytes).trim()).is_ok();
    if !private && !public {
        return Err(usage(
            "is not an OpenSSH key (a private key beginning -----BEGIN OPENSSH PRIVATE KEY-----, or a .pub whose key is in ssh-agent)".into(),
        ));
    }
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "alma-cohort-sign-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    crate::files::create_dir(&dir).map_err(|e| usage(format!("cannot make {}: {e}", dir.display())))?;
    let file = dir.join("plan.txt");
    let result = (|| {
        crate::files::write(&file, text.as_bytes())
            .map_err(|e| usage(format!("cannot write {}: {e}", file.display())))?;
        let out = std::process::Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", NAMESPACE, "-f"])
            .arg(key)
            .arg(&file)
            .stdin(std::process::Stdio::inherit())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| {
                Error::Usage(format!(
                    "cannot run ssh-keygen ({e}); install OpenSSH's client, or sign `alma-cohort plans show PLAN_ID` elsewhere and pass --signature FILE"
                ))
            })?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            let said = said
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("no reason given");
            return Err(usage(format!("ssh-keygen could not sign with it: {}", said.trim())));
        }
        std::fs::read_to_string(file.with_extension("txt.sig"))
            .map_err(|e| usage(format!("ssh-keygen wrote no signature: {e}")))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ed25519 key from a fixed seed, for tests.
    pub fn key(seed: u8) -> ssh_key::PrivateKey {
        let pair = ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
        ssh_key::PrivateKey::from(pair)
    }

    pub fn sign(key: &ssh_key::PrivateKey, namespace: &str, text: &str) -> String {
        key.sign(namespace, HashAlg::Sha512, text.as_bytes())
            .unwrap()
            .to_pem(ssh_key::LineEnding::LF)
            .unwrap()
    }

    fn signers_file(lines: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("signers-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("allowed_signers");
        std::fs::write(&path, lines).unwrap();
        path
    }

    #[test]
    fn a_signature_counts_only_by_a_listed_key_in_the_namespace_over_the_text() {
        let (alice, mallory) = (key(1), key(2));
        let public = alice.public_key().to_openssh().unwrap();
        let path = signers_file(&format!(
            "# approvers\nalice@example.edu namespaces=\"alma-cohort,git\" {public}\n\"bob,robert\" valid-before=\"20200101\" {}\n",
            key(3).public_key().to_openssh().unwrap()
        ));
        let signers = read(&path).unwrap();
        assert_eq!(signers.len(), 2);
        assert_eq!(signers[1].principals, ["bob", "robert"]);
        let now = Utc::now();
        let text = "alma-cohort plan, canonical text v1\nplan: P\n";
        let ok = verify(&sign(&alice, NAMESPACE, text), text.as_bytes(), &signers, now).unwrap();
        assert_eq!(ok.principal, "alice@example.edu");
        assert!(ok.fingerprint.starts_with("SHA256:"));
        let other_text = verify(&sign(&alice, NAMESPACE, "another"), text.as_bytes(), &signers, now).unwrap_err();
        assert!(other_text.contains("not over this plan's text"), "{other_text}");
        let namespace = verify(&sign(&alice, "git", text), text.as_bytes(), &signers, now).unwrap_err();
        assert!(namespace.contains("namespace \"git\""), "{namespace}");
        let unlisted = verify(&sign(&mallory, NAMESPACE, text), text.as_bytes(), &signers, now).unwrap_err();
        assert!(unlisted.contains("does not list"), "{unlisted}");
        let expired = verify(&sign(&key(3), NAMESPACE, text), text.as_bytes(), &signers, now).unwrap_err();
        assert!(expired.contains("line 3"), "{expired}");
        assert!(
            verify("garbage", text.as_bytes(), &signers, now)
                .unwrap_err()
                .contains("not an SSH signature")
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_names_its_line() {
        for (text, wanted) in [
            ("alice ssh-ed25519 AAAAnot-base64\n", ":1"),
            ("# only\n\n", "lists no key"),
            (
                "alice cert-authority ssh-ed25519 AAAA\n",
                "certificates are not supported",
            ),
            ("alice \"unclosed ssh-ed25519 AAAA\n", "a quote is not closed"),
            ("alice\n", "has no key"),
        ] {
            let message = read(&signers_file(text)).unwrap_err().to_string();
            assert!(message.contains(wanted), "{text:?}: {message}");
        }
    }
}
