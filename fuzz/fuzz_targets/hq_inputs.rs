//! What HQ parses from requests, beyond contracts: a subscription endpoint
//! (Endpoint::parse, and its masked form), topic names (path segment), an
//! order published on a topic (Topic::validate), the faults body.
//! Properties: no panic; a masked endpoint shows no password and no query
//! value; refusals are escaped and bounded.
#![no_main]
use hq::faults::FaultPlan;
use hq::feed::{Endpoint, Topic};
use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|text: &str| {
    if let Ok(endpoint) = Endpoint::parse(text) {
        let shown = endpoint.shown();
        let url = endpoint.url();
        // The masked form, read back as a URL: no userinfo but the mask,
        // no query value nor fragment but the mask, same host and path.
        let masked = url::Url::parse(&shown).unwrap_or_else(|e| panic!("{text:?} -> {shown:?}: {e}"));
        assert!(masked.password().is_none(), "password shown: {text:?} -> {shown}");
        assert!(
            masked.username().is_empty() || masked.username() == "***",
            "username shown: {text:?} -> {shown}"
        );
        assert!(
            masked.query_pairs().all(|(_, v)| v == "***"),
            "query value shown: {text:?} -> {shown}"
        );
        assert!(
            masked.fragment().is_none_or(|f| f == "***"),
            "fragment shown: {text:?} -> {shown}"
        );
        assert_eq!(masked.host(), url.host(), "{text:?} -> {shown}");
        assert_eq!(masked.path(), url.path(), "{text:?} -> {shown}");
        let _ = format!("{endpoint} {endpoint:?}");
    }
    match text.parse::<Topic>() {
        Ok(topic) => {
            let _ = topic.validate(text);
        }
        Err(e) => check_message("UnknownTopic", &e.to_string(), 1024),
    }
    for topic in Topic::ALL {
        if let Err(e) = topic.validate(text) {
            check_message("Topic::validate", &e.to_string(), 1024);
        }
    }
    let _ = serde_json::from_str::<FaultPlan>(text);
});
