//! Shell integration: the version names the backup formats; completions and man pages come from
//! the command-line definition and reach every command and option; the install script puts them
//! where shells and `man` look.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_version_names_the_backup_formats_read_and_written() {
    let run = pgark(&["--version"]).await.success();
    assert!(
        run.stdout.starts_with("pgark ")
            && run
                .stdout
                .contains("backup formats: reads 1 to 3, writes 2, 3 when encrypted"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bash_completes_commands_and_options_from_the_generated_script() {
    let script = pgark(&["completions", "bash"]).await.success().stdout;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("pgark.bash");
    std::fs::write(&path, &script).expect("write");
    // Load it into bash and ask for the completions of `pgark dump --par` and `pgark re`.
    let complete = |words: &str, current: usize| {
        format!(
            "source {path}; COMP_WORDS=({words}); COMP_CWORD={current}; \
             COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; _pgark pgark; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path = path.display()
        )
    };
    let run = |script: String| {
        let output = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .expect("run bash");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let options = run(complete("pgark dump --par", 2));
    assert!(
        options.lines().any(|l| l == "--parallel-databases"),
        "{options}"
    );
    let commands = run(complete("pgark re", 1));
    let found: Vec<&str> = commands.lines().collect();
    assert!(
        found.contains(&"restore") && found.contains(&"rekey"),
        "{commands}"
    );
    for shell in ["zsh", "fish"] {
        let script = pgark(&["completions", shell]).await.success().stdout;
        assert!(script.contains("parallel-databases"), "{shell}: {script}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_install_script_puts_the_binary_completions_and_man_pages_in_place() {
    let staging = tempfile::tempdir().expect("dir");
    let output = tokio::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh"))
        .env("PGARK_BIN", env!("CARGO_BIN_EXE_pgark"))
        .env("DESTDIR", staging.path())
        .env("PREFIX", "/usr/local")
        .output()
        .await
        .expect("run install.sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let root = staging.path().join("usr/local");
    for file in [
        "bin/pgark",
        "share/bash-completion/completions/pgark",
        "share/zsh/site-functions/_pgark",
        "share/fish/vendor_completions.d/pgark.fish",
        "share/man/man1/pgark.1",
        "share/man/man1/pgark-dump.1",
        "share/man/man1/pgark-restore.1",
    ] {
        assert!(root.join(file).is_file(), "{file} installed");
    }
    let page = std::fs::read_to_string(root.join("share/man/man1/pgark-dump.1")).expect("man page");
    assert!(
        page.starts_with(".ie") || page.contains(".TH pgark-dump"),
        "a man page: {}",
        &page[..page.len().min(200)]
    );
    assert!(
        page.contains("parallel\\-databases"),
        "every option documented"
    );
}
