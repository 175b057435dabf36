//! Shell completions and man pages come from the same clap definitions that parse the
//! command line: every subcommand and its flags are in them, and they are well formed.

mod support;

use std::process::Command;
use support::cli::run;

#[test]
fn bash_completions_name_every_subcommand_and_parse() {
    let out = run(&["completions", "bash"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for word in [
        "_hakv()",
        "complete -F _hakv",
        "serve",
        "balance",
        "cluster",
        "--snapshot-rate",
        "--ttl",
    ] {
        assert!(
            out.stdout.contains(word),
            "{word} missing from the bash completions"
        );
    }
    // bash reads it without a syntax error.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hakv.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    for shell in ["zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains("snapshot-rate"), "{shell}");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("possible values"), "{}", out.stderr);
}

#[test]
fn man_pages_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = run(&["man", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for (page, flag) in [
        ("hakv", "serve"),
        ("hakv-serve", "snapshot-rate"),
        ("hakv-balance", "admin-listen"),
        ("hakv-cluster-up", "nodes"),
        ("hakv-put", "ttl"),
    ] {
        let text = std::fs::read_to_string(out_dir.join(format!("{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"))
            .replace("\\-", "-"); // roff escapes hyphens
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}.1 is not a man page"
        );
        assert!(text.contains(flag), "{page}.1 does not mention {flag}");
    }
}

#[test]
fn man_pages_into_a_place_that_cannot_be_written_fail_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = run(&["man", "--out", file.join("sub").to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("writing man pages"), "{}", out.stderr);
}
