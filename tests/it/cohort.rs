//! The cohort, right: protected users stay protected however staff wrote their IDs, no reset
//! whose letter cannot arrive, no empty or shrunken run — through the real binary against the
//! simulator.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use alma_sim::SimConfig;

use crate::cli::temp_dir;
use crate::execute::{execute_run, last_json, run, sim_config};
use crate::support::*;

/// A query over "All users" with `extra` TOML lines added to `[cohort]`/`[guard]` sections.
fn query(dir: &Path, report: &str, cohort: &str, guard: &str) -> PathBuf {
    write_query(
        dir,
        "cohort.toml",
        &format!(
            "name = \"cohort-test\"\n[report]\npath = \"{report}\"\n[cohort]\nid_column = \"Primary Identifier\"\n{cohort}\n[guard]\nmax_members = 100000\n{guard}\n"
        ),
    )
}

#[tokio::test]
async fn protected_ids_stay_out_however_they_were_written() {
    let sim = sim(sim_config().users(300)).await;
    let users = sim.handle.users();
    let zeros: Vec<String> = users
        .iter()
        .map(|u| u.primary_id.clone())
        .filter(|id| id.len() == 7 && id.starts_with("00") && id.chars().all(|c| c.is_ascii_digit()))
        .take(3)
        .collect();
    let letters = users
        .iter()
        .map(|u| u.primary_id.clone())
        .find(|id| id.chars().any(|c| c.is_ascii_alphabetic()) && id.chars().any(|c| c.is_ascii_uppercase()))
        .expect("an alphanumeric ID");
    assert_eq!(zeros.len(), 3);
    let unpadded = |id: &str| id.trim_start_matches('0').to_string();
    let dir = temp_dir("protected");
    let excl = dir.join("protected.txt");
    // Notepad's BOM on the first line, zeros lost to Excel, Excel's apostrophe, another case, CRLF.
    std::fs::write(
        &excl,
        format!(
            "\u{feff}{}\r\n# staff\r\n'{}\r\n  {}  \r\n{}\r\n",
            unpadded(&zeros[0]),
            zeros[1],
            unpadded(&zeros[2]),
            letters.to_lowercase()
        ),
    )
    .unwrap();
    let q = query(
        &dir,
        ALL_USERS,
        "exclude_files = [\"protected.txt\"]\n[cohort.normalize]\npad_numeric_to = 7",
        "",
    );
    let state = dir.join("state");
    let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("in an exclusion file") && r.stderr.contains("        4"),
        "{}",
        r.stderr
    );
    let members = the_set(&sim);
    for id in zeros.iter().chain([&letters]) {
        assert!(
            !members.contains(&id.to_lowercase()),
            "{id} is protected but in the set"
        );
    }
    let protected: Vec<String> = zeros.iter().chain([&letters]).map(|i| i.to_lowercase()).collect();
    let expected: std::collections::HashSet<String> = eligible_ids(&sim)
        .into_iter()
        .filter(|i| !protected.contains(i))
        .collect();
    assert_eq!(
        members
            .iter()
            .map(|m| m.to_lowercase())
            .collect::<std::collections::HashSet<_>>(),
        expected,
        "everyone the letter reaches, the protected taken away"
    );
    assert!(
        sim.handle
            .outbox()
            .iter()
            .all(|l| !zeros.contains(&l.user_primary_id) && l.user_primary_id != letters),
        "a protected user got a letter"
    );
}

#[tokio::test]
async fn users_without_an_email_address_are_left_out_listed_and_keep_their_password() {
    let probe = sim(sim_config().users(60)).await;
    let users = probe.handle.users();
    let dir = temp_dir("no-email");
    let csv = dir.join("users.csv");
    let mut text = String::from("Primary Identifier,Account Type,Preferred Email\n");
    let mut without = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let kind = if u.internal { "Internal" } else { "External" };
        let email = match i {
            0 => "",               // empty
            1 => "not-an-address", // malformed
            2 => "@example.edu",   // nothing before the @
            3 => "someone@",       // nothing after it
            _ => "ok",
        };
        if email == "ok" {
            text.push_str(&format!("{},{kind},{}@example.edu\n", u.primary_id, u.primary_id));
        } else {
            if u.internal {
                without.push(u.primary_id.clone());
            }
            text.push_str(&format!("{},{kind},{email}\n", u.primary_id));
        }
    }
    // One user with no email cell at all (the row ends early).
    let missing = users.iter().rev().find(|u| u.internal).unwrap();
    text = text.replace(
        &format!("{0},Internal,{0}@example.edu\n", missing.primary_id),
        &format!("{},Internal\n", missing.primary_id),
    );
    without.push(missing.primary_id.clone());
    std::fs::write(&csv, text).unwrap();
    let sim = sim(sim_config().users(60).csv_report("/shared/Mine/With email", &csv)).await;
    let q = query(
        &dir,
        "/shared/Mine/With email",
        "",
        "account_type_column = \"Account Type\"\nemail_column = \"Preferred Email\"",
    );
    let state = dir.join("state");
    let plan = run(&sim, &state, &["plan", q.to_str().unwrap(), "--json"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let v = last_json(&plan.stdout);
    let dropped = v["dropped"].as_array().unwrap();
    let no_email = dropped.iter().find(|d| d["reason"] == "no_email").expect("the reason");
    assert_eq!(no_email["rows"].as_u64(), Some(without.len() as u64), "{v}");
    assert_eq!(no_email["description"], "no email address");
    let text_plan = run(&sim, &state, &["plan", q.to_str().unwrap()]).await;
    assert!(
        text_plan
            .stdout
            .contains("have no email address: they are left out and keep their current password"),
        "{}",
        text_plan.stdout
    );

    let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = last_json(&r.stdout);
    let folder = state.join("runs").join(v["run_id"].as_str().unwrap());
    let listed = std::fs::read_to_string(folder.join("no-email.csv")).unwrap();
    for id in &without {
        assert!(listed.contains(id.as_str()), "{id} in no-email.csv:\n{listed}");
    }
    assert_eq!(listed.lines().count(), without.len() + 1, "{listed}");
    let html = std::fs::read_to_string(folder.join("report.html")).unwrap();
    let md = std::fs::read_to_string(folder.join("report.md")).unwrap();
    assert!(
        html.contains(&format!("Left out: no email address ({})", without.len())),
        "{html}"
    );
    assert!(
        md.contains(&format!("Left out: no email address ({})", without.len())),
        "{md}"
    );
    for id in &without {
        assert!(
            html.contains(id.as_str()) && md.contains(id.as_str()),
            "{id} in the reports"
        );
    }
    let members = the_set(&sim);
    assert!(without.iter().all(|id| !members.contains(&id.to_lowercase())));
    let lettered: HashSet<String> = sim.handle.outbox().into_iter().map(|l| l.user_primary_id).collect();
    assert!(
        without.iter().all(|id| !lettered.contains(id)),
        "no letter for those without an address"
    );
    assert_eq!(
        lettered.len(),
        members.len(),
        "every member here is internal and has an address"
    );
}

#[tokio::test]
async fn an_empty_cohort_is_refused_before_any_write() {
    let sim = sim(sim_config().users(200)).await;
    let dir = temp_dir("empty");
    let q = query(&dir, ALL_USERS, "where = \"\\\"Primary Identifier\\\" = 'nobody'\"", "");
    let r = execute_run(&sim, &dir.join("state"), q.to_str().unwrap(), &[]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("refused by the guard non_empty")
            && r.stderr.contains("200 rows in the report")
            && r.stderr.contains("200 not matched by where"),
        "{}",
        r.stderr
    );
    assert!(sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty());
    assert!(sim.handle.requests().iter().all(|r| r.method == "GET"), "no write call");
}

/// The last completed run had 3000; a report cut to a third (Alma said IsFinished after one page
/// of three) is refused; the full report passes.
#[tokio::test]
async fn min_ratio_refuses_a_report_cut_to_a_third() {
    let full = || sim_config().users(3000).seed(5);
    let dir = temp_dir("min-ratio");
    let state = dir.join("state");
    // The same users run after run, on purpose: no cooldown.
    let q = query(
        &dir,
        ALL_USERS,
        "",
        "min_ratio = 0.5\nmax_growth = 2.0\ncooldown_days = 0",
    );
    let q = q.to_str().unwrap();
    let first = sim(full()).await;
    let plan = run(&first, &state, &["plan", q]).await;
    assert!(
        plan.stdout
            .contains("Guard min_ratio    note: not checked: no completed run"),
        "{}",
        plan.stdout
    );
    let r = execute_run(&first, &state, q, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);

    let cut: SimConfig = full().premature_finish_after(1);
    let cut = sim(cut).await;
    let refused = execute_run(&cut, &state, q, &[]).await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    // The counts are of who the letter can reach, left-out users taken away on both sides.
    assert!(
        refused.stderr.contains("refused by the guard min_ratio") && refused.stderr.contains("the last completed run"),
        "{}",
        refused.stderr
    );
    assert!(cut.handle.sets().is_empty(), "nothing written");

    let again = sim(full()).await;
    let plan = run(&again, &state, &["plan", q]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let n = eligible_ids(&again).len();
    assert!(
        plan.stdout
            .contains(&format!("Guard min_ratio    ok: the cohort has {n} members"))
            && plan
                .stdout
                .contains(&format!("Guard max_growth   ok: the cohort has {n} members"))
            && plan.stdout.contains("members): 0 added, 0 removed"),
        "{}",
        plan.stdout
    );
}

#[tokio::test]
async fn bad_guards_and_exclusion_files_are_refused_with_one_line() {
    let sim = sim(sim_config().users(50)).await;
    let dir = temp_dir("bad-guards");
    let state = dir.join("state");
    std::fs::write(dir.join("binary.txt"), b"0012345\n\x00\x01PK\x03\x04\n").unwrap();
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "",
            "email_column = \"Preferred Emial\"",
            "Preferred Emial",
            "guard.email_column",
        ),
        ("", "min_ratio = 0", "guard.min_ratio", "is 0"),
        ("", "min_ratio = 1.5", "guard.min_ratio", "is 1.5"),
        (
            "exclude_files = [\"binary.txt\"]",
            "",
            "binary.txt:2",
            "not a text file",
        ),
    ];
    for (cohort, guard, a, b) in cases {
        let q = query(&dir, ALL_USERS, cohort, guard);
        for args in [
            vec!["validate", q.to_str().unwrap()],
            vec!["run", q.to_str().unwrap(), "--execute", "--yes"],
        ] {
            let r = run(&sim, &state, &args).await;
            assert_eq!(r.code, 2, "{guard}{cohort}: {}", r.stderr);
            assert!(
                r.stderr.contains(a) && r.stderr.contains(b),
                "{guard}{cohort}: {}",
                r.stderr
            );
            assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
        }
    }
    assert!(sim.handle.requests().iter().all(|r| r.method == "GET"), "no write call");
}

/// A protection typed with look-alike letters of another script (`МТ60554`, all Cyrillic)
/// protects the ID it looks like; one with full-width digits is refused naming its line (exit 2)
/// — never "protects nobody" silently.
#[tokio::test]
async fn a_protection_in_lookalike_letters_still_protects() {
    let sim = sim(sim_config().users(300)).await;
    let cyrillic = |c: char| match c {
        'A' => Some('\u{410}'),
        'B' => Some('\u{412}'),
        'C' => Some('\u{421}'),
        'E' => Some('\u{415}'),
        'H' => Some('\u{41d}'),
        'K' => Some('\u{41a}'),
        'M' => Some('\u{41c}'),
        'O' => Some('\u{41e}'),
        'P' => Some('\u{420}'),
        'T' => Some('\u{422}'),
        'X' => Some('\u{425}'),
        d if d.is_ascii_digit() => Some(d),
        _ => None,
    };
    let target = sim
        .handle
        .users()
        .into_iter()
        .filter(|u| eligible(&sim, u))
        .map(|u| u.primary_id)
        .find(|id| id.chars().any(|c| c.is_ascii_uppercase()) && id.chars().all(|c| cyrillic(c).is_some()))
        .expect("an ID of letters with Cyrillic look-alikes");
    let lookalike: String = target.chars().map(|c| cyrillic(c).unwrap()).collect();
    assert!(!lookalike.is_ascii());
    let dir = temp_dir("lookalike");
    std::fs::write(dir.join("protected.txt"), format!("# staff\n{lookalike}\n")).unwrap();
    let q = query(&dir, ALL_USERS, "exclude_files = [\"protected.txt\"]", "");
    let r = execute_run(&sim, &dir.join("state"), q.to_str().unwrap(), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !the_set(&sim).contains(&target.to_lowercase()),
        "{target} is protected (as {lookalike}) but in the set"
    );
    assert!(
        !sim.handle.outbox().iter().any(|l| l.user_primary_id == target),
        "no letter"
    );
    // Full-width digits: refused, naming the file and line.
    let dir = temp_dir("fullwidth");
    std::fs::write(
        dir.join("protected.txt"),
        "# staff\n\u{ff11}\u{ff19}\u{ff10}\u{ff10}\u{ff15}\u{ff15}\u{ff10}\n",
    )
    .unwrap();
    let q = query(&dir, ALL_USERS, "exclude_files = [\"protected.txt\"]", "");
    let r = run(&sim, &dir.join("state"), &["plan", q.to_str().unwrap()]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("protected.txt") && r.stderr.contains(":2") && r.stderr.contains("\"1900550\""),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
}

/// The second sweep's look-alikes: small capitals for letters, a Greek capital omicron for the
/// digit zero, a comment typed without its space (`ID#boss`) — each protects the ID it looks like
/// (nobody is mailed who is protected); an accent after a digit, or letters that look like no
/// plain letter, refuse the file naming its line.
#[tokio::test]
async fn protections_in_small_capitals_greek_zeros_and_glued_comments_protect() {
    let sim = sim(sim_config().users(300)).await;
    let small_caps = |c: char| match c {
        'A' => 'ᴀ',
        'B' => 'ʙ',
        'C' => 'ᴄ',
        'D' => 'ᴅ',
        'E' => 'ᴇ',
        'G' => 'ɢ',
        'H' => 'ʜ',
        'J' => 'ᴊ',
        'K' => 'ᴋ',
        'L' => 'ʟ',
        'M' => 'ᴍ',
        'N' => 'ɴ',
        'O' => 'ᴏ',
        'P' => 'ᴘ',
        'R' => 'ʀ',
        'T' => 'ᴛ',
        'U' => 'ᴜ',
        'V' => 'ᴠ',
        'W' => 'ᴡ',
        'Y' => 'ʏ',
        'Z' => 'ᴢ',
        c => c,
    };
    let ids: Vec<String> = sim
        .handle
        .users()
        .into_iter()
        .filter(|u| eligible(&sim, u))
        .map(|u| u.primary_id)
        .collect();
    let lettered = ids
        .iter()
        .find(|id| {
            id.chars().any(|c| c.is_ascii_uppercase()) && id.chars().map(small_caps).all(|c| !c.is_ascii_uppercase())
        })
        .expect("an ID whose letters have small capitals")
        .clone();
    let zeroed = ids
        .iter()
        .find(|id| id.contains('0') && **id != lettered)
        .expect("an ID with a 0")
        .clone();
    let glued = ids
        .iter()
        .find(|id| **id != lettered && **id != zeroed)
        .unwrap()
        .clone();
    let written = [
        lettered.chars().map(small_caps).collect::<String>(),
        zeroed.replace('0', "\u{39f}"),
        format!("{glued}#boss"),
    ];
    let dir = temp_dir("lookalike-2");
    std::fs::write(dir.join("protected.txt"), format!("# staff\n{}\n", written.join("\n"))).unwrap();
    let q = query(&dir, ALL_USERS, "exclude_files = [\"protected.txt\"]", "");
    let r = execute_run(&sim, &dir.join("state"), q.to_str().unwrap(), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let set = the_set(&sim);
    for (id, as_written) in [&lettered, &zeroed, &glued].iter().zip(&written) {
        assert!(
            !set.contains(&id.to_lowercase()),
            "{id} is protected (as {as_written:?}) but in the set"
        );
        assert!(
            !sim.handle.outbox().iter().any(|l| &l.user_primary_id == *id),
            "{id}: no letter"
        );
    }
    // Refused, naming the line: an accent after a digit, a letter like no plain letter.
    for (line, says) in [
        ("1235281\u{301}", "combining mark U+0301"),
        ("\u{5d0}12345", "look like no plain letter"),
    ] {
        let dir = temp_dir("lookalike-refused");
        std::fs::write(dir.join("protected.txt"), format!("# staff\n{line}\n")).unwrap();
        let q = query(&dir, ALL_USERS, "exclude_files = [\"protected.txt\"]", "");
        let r = run(&sim, &dir.join("state"), &["plan", q.to_str().unwrap()]).await;
        assert_eq!(r.code, 2, "{line:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("protected.txt:2") && r.stderr.contains(says),
            "{line:?}: {}",
            r.stderr
        );
    }
}
