//! The whole loop in-process over loopback: HQ's feed → the services → HQ's
//! ledger, with exact reconciliation, at every migration stage and through
//! faults.

#![cfg(test)] // so that clippy.toml's allow-unwrap-in-tests covers the helpers too

#[path = "../common/mod.rs"]
mod common;

use common::{WAIT, all_fulfilled, config};
use contracts::Resource;
use hq::faults::FaultPlan;
use hq::feed::{Endpoint, Topic};
use hq::ledger::Reconciliation;
use launcher::{Platform, Stage, launch};
use monolith::MonolithConfig;
use monolith::api::FulfillmentApi;
use platform::{ApiKey, HookSecret, TrustConfig};
use std::time::Duration;
use testkit::wait::wait_until;
use tokio_util::sync::CancellationToken;

/// Publishes `quantities` on `topic`; returns (iridium, magnesite) the ledger should get.
async fn publish(platform: &Platform, topic: Topic, quantities: &[u32]) -> (u64, u64) {
    let strangled = platform.stage().strangled();
    let mut expected = (0, 0);
    for &quantity in quantities {
        platform
            .hq()
            .feed()
            .publish(topic, &topic.order(quantity))
            .await
            .unwrap();
        let q = u64::from(quantity);
        match topic {
            Topic::Orders => {
                if !strangled.contains(&contracts::Resource::Iridium) {
                    expected.0 += q;
                }
                if !strangled.contains(&contracts::Resource::Magnesite) {
                    expected.1 += q;
                }
            }
            Topic::Iridium => expected.0 += q,
            Topic::Magnesite => expected.1 += q,
        }
    }
    expected
}

/// Shuts `platform` down and checks its reconciliation: `published`
/// orders, each fulfilled once, none lost or counted twice.
async fn shut_down_with_each_order_fulfilled_once(platform: Platform, published: u64) -> Reconciliation {
    let reconciliation = platform.shutdown(WAIT).await.unwrap();
    let totals = &reconciliation.totals;
    assert_eq!(
        (totals.published, totals.fulfilled, totals.lost, totals.duplicated),
        (published, published, 0, 0),
        "{reconciliation:?}"
    );
    assert!(reconciliation.is_clean(), "{reconciliation:?}");
    reconciliation
}

async fn totals(platform: &Platform) -> (u64, u64, u64) {
    let totals = platform.hq().ledger().totals().await.unwrap();
    let launcher_key = totals
        .iter()
        .find(|t| t.fulfillments > 0)
        .cloned()
        .unwrap_or_default();
    (launcher_key.iridium, launcher_key.magnesite, launcher_key.replays)
}

async fn run_stage(stage: Stage) {
    let dir = tempfile::tempdir().unwrap();
    let platform = launch(config(stage, dir.path())).await.unwrap();
    // The run's key is named for the run in HQ's totals.
    let owners: Vec<String> = platform
        .hq()
        .ledger()
        .totals()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.owner)
        .collect();
    let named = format!("the launcher, --stage {}, 20", stage.name());
    assert!(owners.iter().any(|owner| owner.starts_with(&named)), "{owners:?}");
    let mut expected = (0, 0);
    for topic in stage.fed_topics() {
        let (i, m) = publish(&platform, topic, &[1, 2, 3]).await;
        expected = (expected.0 + i, expected.1 + m);
    }
    wait_until("every order fulfilled", WAIT, async || {
        all_fulfilled(&platform).await.then_some(())
    })
    .await;
    let (iridium, magnesite, _) = totals(&platform).await;
    assert_eq!((iridium, magnesite), expected, "{stage:?}");
    let fed = stage.fed_topics();
    let expected_status: Vec<_> = Topic::ALL
        .iter()
        .copied()
        .map(|topic| {
            let n = if fed.contains(&topic) { 3 } else { 0 };
            (topic.as_str(), n, n, 0, 0, 0)
        })
        .collect();
    let counts = || -> Vec<_> {
        launcher::console::status(&platform)
            .topics
            .iter()
            .map(|t| {
                (
                    t.topic,
                    t.published,
                    t.fulfilled,
                    t.failed,
                    t.retried,
                    t.in_flight,
                )
            })
            .collect()
    };
    // A delivery's answer comes a moment after the ledger has its order.
    wait_until("the status to show each topic's counts", WAIT, async || {
        (counts() == expected_status).then_some(())
    })
    .await;
    let status = launcher::console::status(&platform);
    assert_eq!(status.dashboard, format!("{}dashboard", platform.hq_url()));
    // The dashboard says who produces each resource now: the stage's producer alone.
    let dashboard = hq::dashboard::read(platform.hq(), hq::dashboard::View::Hour)
        .await
        .unwrap();
    for &resource in Resource::ALL {
        let recent = dashboard.timeline.recent.resource(resource);
        let strangled = stage.strangled().contains(&resource);
        let (source, now) = if strangled {
            (hq::ledger::Source::Microservice, recent.now.microservice)
        } else {
            (hq::ledger::Source::Monolith, recent.now.monolith)
        };
        assert_eq!(
            (recent.newest.as_ref().map(|newest| newest.source), now),
            (
                Some(source),
                recent.now.monolith + recent.now.microservice + recent.now.unattributed
            ),
            "{stage:?} {resource}: {recent:?}"
        );
        assert!(now > 0, "{stage:?} {resource}: {recent:?}");
    }
    let published = stage.fed_topics().len() as u64 * 3;
    let reconciliation = shut_down_with_each_order_fulfilled_once(platform, published).await;
    // Who produced each resource is the stage: its microservice once
    // strangled, the monolith before.
    for (&resource, units) in Resource::ALL.iter().zip([expected.0, expected.1]) {
        let sources = *reconciliation.produced.unwrap().resource(resource);
        let (monolith, microservice) = if stage.strangled().contains(&resource) {
            (0, units)
        } else {
            (units, 0)
        };
        assert_eq!(
            (sources.monolith, sources.microservice, sources.unattributed),
            (monolith, microservice, 0),
            "{stage:?} {resource}"
        );
    }
}

#[tokio::test]
async fn everything_in_the_monolith() {
    run_stage(Stage::Monolith).await;
}

#[tokio::test]
async fn iridium_strangled() {
    run_stage(Stage::Iridium).await;
}

#[tokio::test]
async fn both_strangled() {
    run_stage(Stage::Both).await;
}

#[tokio::test]
async fn nothing_is_lost_or_doubled_when_services_and_fulfillments_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = launch(config(Stage::Both, dir.path())).await.unwrap();

    // The fulfillment API refuses some calls outright and loses the answer
    // to others after recording them; iridium is down.
    platform.hq().faults().add(FaultPlan {
        fail_fulfillments: 3,
        lose_responses: 3,
    });
    platform
        .microservice(Resource::Iridium)
        .unwrap()
        .stop()
        .await
        .unwrap();

    let mut expected = (0, 0);
    for &topic in Topic::ALL {
        let (i, m) = publish(&platform, topic, &[1, 2, 3, 4]).await;
        expected = (expected.0 + i, expected.1 + m);
    }
    let feed = platform.hq().feed().clone();
    wait_until("iridium deliveries refused and retried", WAIT, async || {
        (feed.stats()[&Topic::Iridium].retried >= 4).then_some(())
    })
    .await;
    platform
        .microservice(Resource::Iridium)
        .unwrap()
        .restart()
        .await
        .unwrap();

    // Fulfilled is not finished: an order whose answer was lost is already
    // in the ledger, and its redelivery (the replay counted below) may still
    // be waiting for its retry.
    wait_until(
        "every order fulfilled and every delivery finished",
        WAIT,
        async || (all_fulfilled(&platform).await && feed.in_flight() == 0).then_some(()),
    )
    .await;
    let faults = platform.hq().faults().remaining();
    assert_eq!(faults, FaultPlan::default(), "every fault was injected");
    let (iridium, magnesite, replays) = totals(&platform).await;
    assert_eq!((iridium, magnesite), expected);
    assert!(
        replays >= 3,
        "lost answers were retried and counted once ({replays} replays)"
    );
    let stats = platform.hq().feed().stats();
    assert!(
        stats.values().all(|s| s.failed == 0 && s.rejected == 0),
        "{stats:?}"
    );

    let published = Topic::ALL.len() as u64 * 4;
    shut_down_with_each_order_fulfilled_once(platform, published).await;
}

/// Two teams on one HQ, as in the workshop: a second monolith, with an API
/// key of its own, subscribed to `orders` beside the launcher's. Each
/// fulfils every order once under its key, which is clean, not doubled;
/// once the second team's monolith is gone, its orders are lost although
/// the first team fulfilled them.
#[tokio::test]
async fn each_team_sharing_hqs_topics_fulfils_every_order_and_one_teams_loss_shows() {
    let dir = tempfile::tempdir().unwrap();
    let platform = launch(config(Stage::Monolith, dir.path())).await.unwrap();
    let hq = platform.hq();
    let team_key = "team-b-0123456789abcdef0123456789abcdef";
    hq.ledger().add_key(team_key, "team b").await.unwrap();
    let mut team = MonolithConfig::new(
        FulfillmentApi {
            endpoint: hq.fulfillment_url().into(),
            api_key: ApiKey::new(team_key),
        },
        HookSecret::new("b".repeat(64)),
    );
    team.route.trust = TrustConfig {
        verify_signatures: true,
        accept_unsigned_orders: false,
        topic_arns: vec![Topic::Orders.arn()],
        sns_stand_in: Some(hq.base_url().clone()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let team_order_url = format!("http://{}/order/", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let serving = tokio::spawn(monolith::run(listener, team, stop.clone().cancelled_owned()));
    hq.feed()
        .subscribe_until_confirmed(
            Topic::Orders,
            Endpoint::parse(&team_order_url).unwrap(),
            Duration::from_millis(20),
        )
        .await
        .unwrap();

    publish(&platform, Topic::Orders, &[1, 2, 3]).await;
    let feed = hq.feed().clone();
    wait_until("both teams' deliveries delivered", WAIT, async || {
        let orders = feed.stats()[&Topic::Orders];
        (orders.delivered == 6 && feed.in_flight() == 0).then_some(())
    })
    .await;
    let both = hq.reconcile().await.unwrap();
    assert_eq!(
        (
            both.totals.published,
            both.totals.fulfilled,
            both.totals.duplicated
        ),
        (3, 3, 0),
        "{both:?}"
    );
    assert!(both.is_clean(), "{both:?}");

    // The second team's monolith stops: its deliveries fail until the
    // retries run out, and its two orders are lost though the first team's
    // monolith fulfilled them.
    stop.cancel();
    serving.await.unwrap().unwrap();
    publish(&platform, Topic::Orders, &[1, 1]).await;
    wait_until("the second team's deliveries given up", WAIT, async || {
        let orders = feed.stats()[&Topic::Orders];
        (orders.failed == 2 && feed.in_flight() == 0).then_some(())
    })
    .await;
    let one = platform.shutdown(WAIT).await.unwrap();
    assert_eq!(
        (one.totals.published, one.totals.fulfilled, one.totals.lost),
        (5, 3, 2),
        "{one:?}"
    );
    assert!(!one.is_clean());
}

/// One service subscribed twice (`/order/` and `/order`, which it serves
/// the same): each order reaches it twice and is fulfilled once, the
/// second call a repeat. That is fulfilled, as for a team's two stacks
/// side by side during a migration; it counted every order lost.
#[tokio::test]
async fn a_service_subscribed_twice_fulfils_each_order_once_and_that_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let platform = launch(config(Stage::Monolith, dir.path())).await.unwrap();
    let hq = platform.hq();
    hq.feed()
        .subscribe_until_confirmed(
            Topic::Orders,
            Endpoint::parse(&platform.monolith.url("/order")).unwrap(),
            Duration::from_millis(20),
        )
        .await
        .unwrap();
    let expected = publish(&platform, Topic::Orders, &[1, 2, 3]).await;
    let feed = hq.feed().clone();
    wait_until("both subscriptions' deliveries delivered", WAIT, async || {
        let orders = feed.stats()[&Topic::Orders];
        (orders.delivered == 6 && feed.in_flight() == 0).then_some(())
    })
    .await;
    let (iridium, magnesite, replays) = totals(&platform).await;
    assert_eq!((iridium, magnesite, replays), (expected.0, expected.1, 3));
    let reconciliation = platform.shutdown(WAIT).await.unwrap();
    assert_eq!(
        (
            reconciliation.totals.published,
            reconciliation.totals.fulfilled,
            reconciliation.totals.lost
        ),
        (3, 3, 0),
        "{reconciliation:?}"
    );
    assert!(reconciliation.is_clean(), "{reconciliation:?}");
}

/// The workshop's strangling step during SNS' retries: a monolith records
/// a bundle at HQ but its answer is lost, and SNS' redelivery reaches a
/// monolith that no longer gathers iridium (`STRANGLED` changed in
/// between). Same message, same idempotency key, other quantities: it is
/// the order already fulfilled, answered 200 and counted once. HQ refused
/// it (422), and SNS retried a fulfilled order, each attempt answered 502,
/// until it gave up.
#[tokio::test]
async fn a_redelivery_after_strangling_is_the_order_already_fulfilled() {
    let dir = tempfile::tempdir().unwrap();
    let platform = launch(config(Stage::Monolith, dir.path())).await.unwrap();
    let hq = platform.hq();
    let key = "strangling-0123456789abcdef0123456789abcdef";
    hq.ledger().add_key(key, "strangling").await.unwrap();
    let monolith_url = async |strangled: &[Resource]| {
        let mut monolith = MonolithConfig::new(
            FulfillmentApi {
                endpoint: hq.fulfillment_url().into(),
                api_key: ApiKey::new(key),
            },
            HookSecret::new("s".repeat(64)),
        );
        monolith.strangled = strangled.iter().copied().collect();
        monolith.route.trust = TrustConfig {
            verify_signatures: true,
            accept_unsigned_orders: false,
            topic_arns: vec![Topic::Orders.arn()],
            sns_stand_in: Some(hq.base_url().clone()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/order/", listener.local_addr().unwrap());
        tokio::spawn(monolith::run(listener, monolith, std::future::pending()));
        url
    };
    let before = monolith_url(&[]).await;
    let after = monolith_url(&[Resource::Iridium]).await;

    let signer =
        hq::sns_signer::SnsSigner::from_pem(&common::identity_pems().0, hq.feed().cert_url()).unwrap();
    let mut envelope = contracts::sns::Envelope {
        message_type: contracts::sns::MessageType::Notification,
        message_id: "5b0e4b1e-7d0a-4f7c-9c1e-3f1d2a6b8c90".into(),
        token: None,
        topic_arn: Topic::Orders.arn(),
        subject: None,
        message: Topic::Orders.order(2),
        subscribe_url: None,
        timestamp: "2026-12-06T06:00:00.000Z".into(),
        signature_version: contracts::sns::SignatureVersion::V2,
        signature: String::new(),
        signing_cert_url: String::new(),
        unsubscribe_url: None,
        message_attributes: None,
    };
    signer.sign(&mut envelope);
    let deliver = async |url: &str| {
        reqwest::Client::new()
            .post(url)
            .header("content-type", "text/plain; charset=UTF-8")
            .body(serde_json::to_string(&envelope).unwrap())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };

    hq.faults().add(FaultPlan {
        fail_fulfillments: 0,
        lose_responses: 1,
    });
    let first = deliver(&before).await;
    assert!(
        first >= 500,
        "the lost answer is a 5xx, for SNS to retry: {first}"
    );
    assert_eq!(deliver(&after).await, 200, "the redelivery, after strangling");

    let totals = hq.ledger().totals().await.unwrap();
    let mine = totals.iter().find(|t| t.owner == "strangling").unwrap();
    assert_eq!(
        (mine.fulfillments, mine.iridium, mine.magnesite, mine.replays),
        (1, 2, 2, 1),
        "fulfilled once, as first gathered: {mine:?}"
    );
}

#[tokio::test]
async fn the_generator_feeds_and_shutdown_drains() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(Stage::Iridium, dir.path());
    config.rates = [(Topic::Orders, 50.0), (Topic::Iridium, 50.0)]
        .into_iter()
        .collect();
    let mut platform = launch(config).await.unwrap();
    platform.feed().await;
    let feed = platform.hq().feed().clone();
    wait_until("orders generated on both topics", WAIT, async || {
        let stats = feed.stats();
        (stats[&Topic::Orders].published >= 10 && stats[&Topic::Iridium].published >= 10).then_some(())
    })
    .await;
    let reconciliation = platform.shutdown(WAIT).await.unwrap();
    assert!(reconciliation.totals.published >= 20);
    assert_eq!(reconciliation.totals.fulfilled, reconciliation.totals.published);
    assert!(reconciliation.is_clean(), "{reconciliation:?}");
}

#[tokio::test]
async fn a_gather_no_order_could_finish_in_time_is_refused_at_launch() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(Stage::Both, dir.path());
    // 5 s, then the microservices' 10 s call to the glue hook: more than
    // the 14 s an order has. Launched, every microservice order got 503.
    config.gather_delay = std::time::Duration::from_secs(5);
    let refused = launch(config).await.map(|_| ()).unwrap_err().to_string();
    assert!(
        refused.starts_with("iridium: REQUEST_TIMEOUT_MS (14000) must exceed"),
        "{refused}"
    );
    assert!(refused.ends_with("(--gather-delay-ms)"), "{refused}");
}

/// A platform at `stage` in `dir` whose rates are the stage's, as the
/// launcher's are when no `--rate` is given: they follow a switch. Nothing
/// is generated before [`Platform::feed`].
async fn launch_with_the_stages_rates(stage: Stage, dir: &std::path::Path) -> Platform {
    let mut config = config(stage, dir);
    config.rates = stage.default_rates();
    config.rates_follow_stage = true;
    launch(config).await.unwrap()
}

/// The producer each resource's newest fulfillment came from, by the
/// dashboard's "Now" line.
async fn newest_sources(platform: &Platform) -> Vec<Option<hq::ledger::Source>> {
    let dashboard = hq::dashboard::read(platform.hq(), hq::dashboard::View::Hour)
        .await
        .unwrap();
    Resource::ALL
        .iter()
        .map(|&resource| {
            let recent = dashboard.timeline.recent.resource(resource);
            recent.newest.as_ref().map(|newest| newest.source)
        })
        .collect()
}

/// A stage switch while the platform runs, as the launcher's keys make
/// one: the monolith is deployed again on its port with the new strangled
/// set, which never refuses a connection meanwhile, the generator's rates
/// follow the stage, HQ carries on, and orders published across three
/// switches are each fulfilled once. Two workers: the knocks go on while
/// a switch awaits nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_switch_while_orders_flow_moves_production_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = launch_with_the_stages_rates(Stage::Monolith, dir.path()).await;
    let monolith_url = platform.monolith.url("/");

    publish(&platform, Topic::Orders, &[1, 2]).await;
    wait_until("the monolith's orders fulfilled", WAIT, async || {
        all_fulfilled(&platform).await.then_some(())
    })
    .await;
    let monolith = Some(hq::ledger::Source::Monolith);
    assert_eq!(newest_sources(&platform).await, [monolith, monolith]);

    // Orders keep coming while the monolith is deployed again, three times,
    // and connections keep knocking at its port.
    let port: std::net::SocketAddr = monolith_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let switched = CancellationToken::new();
    let knocking = tokio::spawn({
        let switched = switched.clone();
        async move {
            let (mut knocks, mut refused) = (0u32, 0u32);
            while !switched.is_cancelled() {
                if tokio::net::TcpStream::connect(port).await.is_err() {
                    refused += 1;
                }
                knocks += 1;
            }
            (knocks, refused)
        }
    });
    let feed = platform.hq().feed().clone();
    let flowing = tokio::spawn(async move {
        for _ in 0..40 {
            feed.publish(Topic::Orders, &Topic::Orders.order(1))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    platform.switch_stage(Stage::Both).await.unwrap();
    assert_eq!(platform.stage(), Stage::Both);
    assert_eq!(platform.rates(), &Stage::Both.default_rates());
    platform.switch_stage(Stage::Iridium).await.unwrap();
    platform.switch_stage(Stage::Both).await.unwrap();
    switched.cancel();
    let (knocks, refused) = knocking.await.unwrap();
    assert_eq!(refused, 0, "of {knocks} connections");
    flowing.await.unwrap();
    assert_eq!(platform.monolith.url("/"), monolith_url, "the same port");

    // Now each resource comes from its microservice, and bundles gather none.
    publish(&platform, Topic::Iridium, &[3]).await;
    publish(&platform, Topic::Magnesite, &[4]).await;
    let feed = platform.hq().feed().clone();
    wait_until(
        "every order fulfilled and every delivery finished",
        WAIT,
        async || (all_fulfilled(&platform).await && feed.in_flight() == 0).then_some(()),
    )
    .await;
    let microservice = Some(hq::ledger::Source::Microservice);
    assert_eq!(newest_sources(&platform).await, [microservice, microservice]);
    // A monolith that is down (a switch that failed midway) is deployed
    // again by a switch to the stage it was at.
    platform.monolith.stop().await.unwrap();
    assert!(!platform.is_at(Stage::Both));
    platform.switch_stage(Stage::Both).await.unwrap();
    assert!(platform.is_at(Stage::Both));
    let before = totals(&platform).await;
    publish(&platform, Topic::Orders, &[5]).await;
    wait_until("the last bundle fulfilled", WAIT, async || {
        all_fulfilled(&platform).await.then_some(())
    })
    .await;
    assert_eq!(
        totals(&platform).await.0,
        before.0,
        "strangled: no iridium gathered"
    );

    shut_down_with_each_order_fulfilled_once(platform, 45).await;
}

/// With the stage's own rates (no `--rate`), the generator feeds the
/// topics a switch carves out, from the switch on.
#[tokio::test]
async fn the_generator_feeds_what_a_stage_switch_carves_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut platform = launch_with_the_stages_rates(Stage::Monolith, dir.path()).await;
    platform.feed().await;
    let feed = platform.hq().feed().clone();
    wait_until("a bundle generated", WAIT, async || {
        (feed.stats()[&Topic::Orders].published > 0).then_some(())
    })
    .await;
    assert_eq!(feed.stats()[&Topic::Magnesite].published, 0);
    platform.switch_stage(Stage::Both).await.unwrap();
    wait_until("magnesite's own orders generated", WAIT, async || {
        (feed.stats()[&Topic::Magnesite].published > 0).then_some(())
    })
    .await;
    let reconciliation = platform.shutdown(WAIT).await.unwrap();
    assert!(reconciliation.is_clean(), "{reconciliation:?}");
}
