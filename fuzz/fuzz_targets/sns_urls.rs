//! TrustedHosts::check_cert_url / check_subscribe_url, without a stand-in
//! and under two stand-ins. Properties: no panic; what is accepted without
//! a stand-in is https on sns.<region>.amazonaws.com(.cn), no port or
//! userinfo (a certificate: the exact .pem path, no query or fragment);
//! what is accepted under a stand-in is fetched from the stand-in's origin,
//! under its path, with no userinfo; refusals are escaped and bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use platform::sns::TrustedHosts;
use std::sync::OnceLock;
use url::Url;

include!("common.rs");

fn hosts() -> &'static [(Option<Url>, TrustedHosts)] {
    static HOSTS: OnceLock<Vec<(Option<Url>, TrustedHosts)>> = OnceLock::new();
    HOSTS.get_or_init(|| {
        [None, Some("http://127.0.0.1:4566"), Some("http://hq:8080/sns/")]
            .into_iter()
            .map(|s| {
                let url = s.map(|s| Url::parse(s).expect("stand-in"));
                (url.clone(), TrustedHosts::new(url))
            })
            .collect()
    })
}

fn sns_host(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"));
    region.is_some_and(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

fn check_fetch(url: &Url, stand_in: &Option<Url>, cert: bool, input: &str) {
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "userinfo: {input:?} -> {url}"
    );
    match stand_in {
        None => {
            assert_eq!(url.scheme(), "https", "{input:?} -> {url}");
            assert!(url.port().is_none(), "{input:?} -> {url}");
            assert!(sns_host(url), "not an SNS host: {input:?} -> {url}");
        }
        Some(base) => {
            assert_eq!(
                url.origin(),
                base.origin(),
                "left the stand-in: {input:?} -> {url}"
            );
            let prefix = base.path().trim_end_matches('/');
            assert!(
                url.path()
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('/')),
                "outside the stand-in's path: {input:?} -> {url}"
            );
        }
    }
    if cert {
        assert!(
            url.query().is_none() && url.fragment().is_none(),
            "{input:?} -> {url}"
        );
        assert!(url.path().ends_with(".pem"), "{input:?} -> {url}");
    }
    // What is fetched parses back to itself (reqwest sends the serialisation).
    assert_eq!(Url::parse(url.as_str()).as_ref(), Ok(url), "{input:?} -> {url}");
}

fuzz_target!(|input: &str| {
    for (stand_in, hosts) in hosts() {
        match hosts.check_cert_url(input) {
            Ok(trusted) => {
                check_fetch(trusted.url(), stand_in, true, input);
                if stand_in.is_none() {
                    assert!(trusted.headers().is_empty());
                }
            }
            Err(e) => check_message("cert URL refusal", &e.to_string(), 1024),
        }
        match hosts.check_subscribe_url(input) {
            Ok(trusted) => {
                check_fetch(trusted.url(), stand_in, false, input);
                for (_, value) in trusted.headers() {
                    assert!(
                        value.bytes().all(|b| (0x20..0x7f).contains(&b)),
                        "header {value:?}"
                    );
                }
            }
            Err(e) => check_message("subscribe URL refusal", &e.to_string(), 1024),
        }
    }
});
