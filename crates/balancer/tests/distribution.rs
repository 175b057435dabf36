//! Each algorithm's distribution, measured through the real proxy: counts of requests that
//! reached each real backend.

mod common;

use common::*;
use hakv_balancer::Algorithm;
use std::collections::BTreeMap;

async fn backends() -> Vec<TestBackend> {
    vec![
        TestBackend::start("a").await,
        TestBackend::start("b").await,
        TestBackend::start("c").await,
    ]
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn round_robin_splits_evenly() {
    let bs = backends().await;
    let mut c = config(&[&bs[0], &bs[1], &bs[2]]);
    c.algorithm = Algorithm::RoundRobin;
    let lb = start(c).await;
    let got = spread(lb.addr, 300, |i| format!("/data/k{i}")).await;
    assert_eq!(got, counts(&[("a", 100), ("b", 100), ("c", 100)]));
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn smooth_weighted_round_robin_follows_the_weights_in_the_nginx_order() {
    let bs = backends().await;
    let mut c = config(&[&bs[0], &bs[1], &bs[2]]);
    c.backends[0].weight = 5;
    c.algorithm = Algorithm::WeightedRoundRobin;
    let lb = start(c).await;
    let cl = client();
    let mut order = String::new();
    for _ in 0..14 {
        order.push_str(&get(&cl, &format!("http://{}/data/x", lb.addr)).await.1);
    }
    assert_eq!(order, "aabacaaaabacaa");
    let got = spread(lb.addr, 700, |_| "/data/x".into()).await;
    assert_eq!(got, counts(&[("a", 500), ("b", 100), ("c", 100)]));
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn least_connections_spreads_sequential_requests() {
    let bs = backends().await;
    let mut c = config(&[&bs[0], &bs[1], &bs[2]]);
    c.algorithm = Algorithm::LeastConnections;
    let lb = start(c).await;
    let got = spread(lb.addr, 300, |i| format!("/data/k{i}")).await;
    // One request at a time: ties rotate, so the split is even (up to a request whose
    // in-flight slot had not been released yet when the next one was placed).
    assert_eq!(got.values().sum::<u64>(), 300);
    for (name, n) in &got {
        assert!(*n >= 80, "{name} got only {n} of 300: {got:?}");
    }
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn p2c_uses_every_backend() {
    let bs = backends().await;
    let mut c = config(&[&bs[0], &bs[1], &bs[2]]);
    c.algorithm = Algorithm::P2c;
    let lb = start(c).await;
    // p2c follows measured latency, and on a shared machine one scheduling hiccup makes a
    // backend look slow for a while, so shares vary from run to run (its exact choices are
    // unit-tested with a scripted random source and a manual clock; its preference for fast
    // backends by the slow-backend test). What must hold here: no backend is starved after its
    // first answer. Before the EWMA decayed while idle, one backend got exactly 1 of 600.
    let got = spread(lb.addr, 600, |i| format!("/data/k{i}")).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got.values().sum::<u64>(), 600);
    for (name, n) in &got {
        assert!(*n >= 2, "{name} got only {n} of 600: {got:?}");
    }
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn key_hash_keeps_each_key_on_one_backend_and_spreads_keys() {
    let bs = backends().await;
    let mut c = config(&[&bs[0], &bs[1], &bs[2]]);
    c.algorithm = Algorithm::KeyHash;
    let lb = start(c).await;
    let cl = client();
    let mut per_backend: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..300 {
        let url = format!("http://{}/data/user/{i}", lb.addr);
        let (_, first) = get(&cl, &url).await;
        for _ in 0..2 {
            assert_eq!(get(&cl, &url).await.1, first, "key user/{i} moved");
        }
        // The same key spelled with a percent escape is the same key to hakv.
        let escaped = format!("http://{}/data/user%2F{i}", lb.addr);
        assert_eq!(get(&cl, &escaped).await.1, first, "user%2F{i} went elsewhere");
        *per_backend.entry(first).or_insert(0) += 1;
    }
    assert_eq!(per_backend.len(), 3, "{per_backend:?}");
    for (name, n) in &per_backend {
        assert!(*n >= 50, "{name} owns only {n} of 300 keys: {per_backend:?}");
    }
    lb.shutdown().await.unwrap();
}
