//! The benchmark's baseline: a bare axum server whose webhook route answers
//! 200 and does nothing else. `scripts/bench-intake.sh` measures agentic
//! against it in the same run.

use axum::routing::post;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3999".into());
    let app = Router::new().route("/api/github/webhooks", post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
