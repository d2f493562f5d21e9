// Checks every target shares, brought in with `include!` (each target is a
// binary of its own).

/// A character that must never reach a log line raw (docs/contract.md,
/// Trust): control characters, line/paragraph separators, bidi controls.
#[allow(dead_code)]
fn dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// An error message quoting caller text: escaped, and bounded.
#[allow(dead_code)]
fn check_message(what: &str, message: &str, max_bytes: usize) {
    if let Some(c) = message.chars().find(|&c| dangerous(c)) {
        panic!("{what}: raw {c:?} in message {message:?}");
    }
    assert!(
        message.len() <= max_bytes,
        "{what}: message of {} bytes (> {max_bytes}): {:?}",
        message.len(),
        message.chars().take(300).collect::<String>()
    );
}
