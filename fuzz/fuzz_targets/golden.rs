//! A golden file is read by `inspector check` and `diff` from the repository,
//! where anyone may have edited it by hand: any text may come in. Parsing must
//! name what is wrong or succeed; what succeeds must survive `--update`
//! (render, then parse again) unchanged, and compare equal to itself.

#![no_main]

use inspector::golden::{compare, format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The commands read goldens with read_to_string: only UTF-8 gets here.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(first) = format::parse(text) else {
        return;
    };
    // Rendering escapes what a terminal must not see, so the first render may
    // change the text; from then on, render and parse are each other's inverse.
    let rendered = format::render(&first);
    let second = format::parse(&rendered)
        .unwrap_or_else(|e| panic!("a rendered golden does not parse: {e}\n{rendered}"));
    let again = format::render(&second);
    assert_eq!(rendered, again, "render∘parse is not stable");
    assert_eq!(
        format::parse(&again).as_ref(),
        Ok(&second),
        "parse∘render is not the identity"
    );
    if rendered == text {
        assert_eq!(
            first, second,
            "a golden in its own format reads differently"
        );
    }
    let diffs = compare::compare(&second, &second);
    assert!(
        diffs.iter().all(|d| !d.differs()),
        "a golden differs from itself: {}",
        compare::unified(&diffs, "a", "a", 3)
    );
});
