//! The runner against nodes that misbehave as processes rather than in what they say.

use std::path::Path;
use std::process::Command;

use crate::util::{TempDir, fixture_bin, run};

/// Kills a process by pid when dropped, so a failing test leaves nothing running.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.0).status();
    }
}

fn alive(pid: &str) -> bool {
    Command::new("kill")
        .args(["-0", pid])
        .status()
        .is_ok_and(|s| s.success())
}

/// A wrapper script that starts a long `sleep` in the background (which inherits the node's
/// pipes) and then becomes the node. Killing the node leaves the pipes open; the run must end
/// anyway, while the sleep is still running.
#[test]
fn a_process_the_node_started_holding_its_pipes_does_not_hang_the_run() {
    let dir = TempDir::new("held-pipes");
    let pid_file = dir.0.join("sleep.pid");
    let script = dir.0.join("node.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 300 &\necho $! > '{}'\nexec '{}' \"$@\"\n",
            pid_file.display(),
            fixture_bin()
        ),
    )
    .unwrap();
    let chmod = Command::new("chmod").arg("+x").arg(&script).status();
    assert!(chmod.is_ok_and(|s| s.success()));
    let run = run(Path::new(&script), &["--time-limit", "1"], &[]);
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let _sleep = KillOnDrop(pid.clone());
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert!(
        alive(&pid),
        "the run waited for the background sleep to end\n{}",
        run.explain()
    );
    assert!(
        run.stderr
            .contains("n0's stdout, stderr stayed open after it was killed"),
        "{}",
        run.explain()
    );
}
