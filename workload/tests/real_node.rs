//! The project's own node, `maelstrom-kafka`, must be judged valid.
//!
//! `CARGO_BIN_EXE_*` only names binaries of this package, so the node is found next to
//! this test's own profile directory (`target/<profile>/`), and built there if missing.

use std::path::PathBuf;
use std::process::Command;

use crate::util::run;

fn real_node() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/tests-<hash>
    let profile_dir = exe.parent().and_then(|p| p.parent()).unwrap().to_path_buf();
    let node = profile_dir.join("maelstrom-kafka");
    if !node.is_file() {
        let target_dir = profile_dir.parent().unwrap();
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args([
            "build",
            "-p",
            "maelstrom-kafka",
            "--bin",
            "maelstrom-kafka",
            "--manifest-path",
        ])
        .arg(&manifest);
        cmd.env("CARGO_TARGET_DIR", target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some(profile) => {
                cmd.args([
                    "--profile",
                    if profile == "release" {
                        "release"
                    } else {
                        profile
                    },
                ]);
            }
            None => {}
        }
        let status = cmd.status().expect("run cargo build for maelstrom-kafka");
        assert!(status.success(), "building maelstrom-kafka failed");
    }
    node
}

#[test]
fn our_node_is_valid() {
    let node = real_node();
    let run = run(&node, &["--time-limit", "3"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(run.results["valid"], true, "{}", run.explain());
    assert!(run.stdout.contains("Everything looks good!"));
    assert!(
        run.results["stats"]["by-f"]["send"]["ok-count"]
            .as_u64()
            .unwrap_or(0)
            > 500
    );
}
