//! The orders and the glue hook: BundleOrder/ResourceOrder::from_text,
//! HookRequest::from_parts (body, Idempotency-Key, x-interstella-order-id),
//! Producer::from_header and FulfillmentRequest (HQ's /receiving/ body).
//! Input: the body, then up to three header values, separated by 0x00.
//! Properties: no panic; accepted quantities are 1..=1,000,000; an accepted
//! hook request round-trips through the body and headers the resource
//! services send; refusals are escaped and bounded.
#![no_main]
use contracts::{
    BundleOrder, FulfillmentRequest, HookRequest, IdempotencyKey, Order, OrderId, Producer, ResourceOrder,
};
use libfuzzer_sys::fuzz_target;

include!("common.rs");

const MAX_REFUSAL: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let body = parts.next().unwrap_or_default();
    let key = parts.next();
    let id = parts.next();
    let producer = parts.next();

    match BundleOrder::from_text(body) {
        Ok(order) => assert!((1..=1_000_000).contains(&order.bundle), "{order:?}"),
        Err(e) => check_message("BundleOrder", &e.to_string(), MAX_REFUSAL),
    }
    match ResourceOrder::from_text(body) {
        Ok(order) => {
            assert!((1..=1_000_000).contains(&order.quantity), "{order:?}");
            let written = serde_json::to_vec(&order).expect("serialises");
            assert_eq!(ResourceOrder::from_text(&written), Ok(order));
        }
        Err(e) => check_message("ResourceOrder", &e.to_string(), MAX_REFUSAL),
    }
    // The monolith reads the order id's header first, then the rest.
    let hook = OrderId::from_header(id).and_then(|id| HookRequest::from_parts(body, key, id));
    match hook {
        Ok(hook) => {
            let written = serde_json::to_vec(&hook.order).expect("serialises");
            let headers = hook.headers();
            let find = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.as_bytes())
            };
            let again = OrderId::from_header(find(contracts::order_id::ORDER_ID_HEADER)).and_then(|id| {
                HookRequest::from_parts(&written, find(contracts::fulfillment::IDEMPOTENCY_KEY_HEADER), id)
            });
            assert_eq!(again.as_ref(), Ok(&hook), "hook round trip");
            if let Some(k) = &hook.idempotency_key {
                assert_eq!(IdempotencyKey::parse(k.as_str()).as_ref(), Some(k));
            }
            if let Some(i) = &hook.order_id {
                assert!(!i.as_str().chars().any(dangerous));
                assert_eq!(OrderId::parse(i.as_str()).as_ref(), Some(i));
            }
        }
        Err(e) => check_message("HookRequest", &e.to_string(), MAX_REFUSAL),
    }
    match Producer::from_header(producer) {
        Ok(_) => {}
        Err(e) => check_message("Producer", &e.to_string(), MAX_REFUSAL),
    }
    // HQ's /receiving/ body (deny_unknown_fields, u32 quantities).
    if let Ok(mut request) = serde_json::from_slice::<FulfillmentRequest>(contracts::json_text(body)) {
        let written = serde_json::to_vec(&request).expect("serialises");
        let again: FulfillmentRequest = serde_json::from_slice(&written).expect("reads back");
        assert_eq!(again, request);
        request.produced_by = Producer::from_header(producer).ok().flatten();
        let _ = request.misattributed();
    }
});
