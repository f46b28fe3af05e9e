//! What `inspector --version` says, made by build.rs: the package version,
//! the commit built (`unknown` outside a git checkout) and a short sha256 of
//! the embedded probe object, e.g.
//! `0.1.0 (commit 7c2b5f6abcd1, probe sha256:1a2b3c4d5e6f)`. A fleet's
//! agents report it, so that a bug report names the exact build.

/// The version line's text after the program's name.
pub const LONG: &str = env!("INSPECTOR_LONG_VERSION");

#[cfg(test)]
mod tests {
    use super::LONG;

    #[test]
    fn the_version_names_the_package_the_commit_and_the_probe() {
        let rest = LONG
            .strip_prefix(concat!(env!("CARGO_PKG_VERSION"), " (commit "))
            .unwrap_or_else(|| panic!("{LONG}"));
        let (commit, rest) = rest
            .split_once(", probe ")
            .unwrap_or_else(|| panic!("{LONG}"));
        assert!(
            commit == "unknown"
                || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{LONG}"
        );
        let probe = rest
            .strip_prefix("sha256:")
            .and_then(|p| p.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{LONG}"));
        assert_eq!(probe.len(), 12, "{LONG}");
        assert!(probe.bytes().all(|b| b.is_ascii_hexdigit()), "{LONG}");
    }
}
