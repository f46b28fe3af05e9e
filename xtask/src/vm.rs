//! `cargo xtask vm-test`: only the test that boots Debian 12's kernel (6.1)
//! under qemu and runs inspector there, on a pure cgroup2 layout
//! (`tests/tests/kernel_vm.rs`). `cargo xtask test` runs it too, among all
//! the others; this is the short way to it while working on another kernel.

use anyhow::Result;

use crate::util;

/// Runs the VM test binary, its output shown as it goes: the guest's timings
/// and what each check printed.
pub fn test(test_args: &[String]) -> Result<()> {
    util::step("booting Debian 12's kernel under qemu (TCG) and running inspector there");
    let mut cmd = util::cargo();
    cmd.args([
        "test",
        "--release",
        "--package",
        "tests",
        "--test",
        "kernel_vm",
        "--",
        "--nocapture",
    ])
    .args(test_args);
    util::run(crate::test_env(&mut cmd))
}
