//! contracts::quote: whatever the text, quoted(), quoted_json() and
//! shortened() show no raw control character, line separator or
//! direction control, and stay bounded.
#![no_main]
use contracts::quote::{quoted, quoted_json, shortened};
use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|text: &str| {
    // 64 chars of at most 10 bytes escaped, the quotes, "…(N bytes)".
    check_message("quoted", &quoted(text).owned(), 64 * 10 + 40);
    check_message("quoted_json", &quoted_json(text).owned(), 64 * 10 + 40);
    check_message("shortened", &shortened(text).owned(), 240 * 10 + 40);
});
