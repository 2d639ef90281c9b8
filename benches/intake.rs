//! Micro-benchmarks of the intake path's CPU work: signature check and
//! parsing a real-shaped ~20 KB `pull_request` payload into our event type.
//! End-to-end throughput lives in `scripts/bench-intake.sh`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn payload() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pull_request.opened.json"
    );
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    serde_json::to_vec(&value).unwrap()
}

fn intake(c: &mut Criterion) {
    let body = payload();
    let secret = b"bench-secret".as_slice();
    let signature = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(&body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    c.bench_function("verify signature (20 KB)", |b| {
        b.iter(|| {
            agentic::server::webhook::signature_matches(
                [secret],
                black_box(&signature),
                black_box(&body),
            )
        })
    });
    c.bench_function("parse pull_request into Event (20 KB)", |b| {
        b.iter(|| agentic::event::parse("pull_request", black_box(&body)).unwrap())
    });
    c.bench_function(
        "parse into serde_json::Value (20 KB, for comparison)",
        |b| b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap()),
    );
    c.bench_function("prepare delivery and jobs (20 KB)", |b| {
        b.iter(|| agentic::intake::prepare("pull_request", "d", black_box(&body)).unwrap())
    });
}

criterion_group!(benches, intake);
criterion_main!(benches);
