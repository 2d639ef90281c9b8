//! `POST /api/github/webhooks`: the verified intake of GitHub deliveries.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use tracing::Instrument;

use super::AppState;
use crate::intake::{self, Prepared, MAX_DELIVERY_ID_LEN};
use crate::metrics::DeliveryOutcome;
use crate::store::DeliveryOutcome as Stored;

/// GitHub never delivers a payload over 25 MB; nothing larger is read.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// A delivery whose headers are present and whose signature matched one of
/// the configured secrets.
#[derive(Debug)]
pub struct VerifiedWebhook {
    pub event: String,
    pub delivery: String,
    /// The JSON payload (already taken out of a form-encoded body).
    pub payload: Bytes,
    pub started: Instant,
    /// Held until the delivery is stored: counts against the cap on
    /// deliveries in flight.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Why a delivery was refused before it was parsed. The texts are short and
/// say nothing about secrets.
#[derive(Debug)]
pub enum WebhookRejection {
    MissingHeader(&'static str),
    BadDeliveryId,
    TooLarge,
    Unreadable,
    BadSignature,
    BadForm,
    /// The body did not arrive within the read timeout.
    SlowBody,
    /// Too many deliveries are being read at once.
    Busy,
}

/// How long a delivery waits for a slot when the cap on deliveries in
/// flight is reached, before it is answered `503`: well inside GitHub's
/// 10 s, long enough for a burst of small deliveries to pass.
const INFLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a busy server asks GitHub (or a load balancer) to wait, in seconds.
const BUSY_RETRY_AFTER: &str = "1";

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        match self {
            WebhookRejection::MissingHeader(h) => {
                (StatusCode::BAD_REQUEST, format!("missing {h} header\n")).into_response()
            }
            WebhookRejection::BadDeliveryId => (
                StatusCode::BAD_REQUEST,
                "X-GitHub-Delivery must be 1 to 128 visible ASCII characters\n",
            )
                .into_response(),
            WebhookRejection::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload larger than 25 MiB\n",
            )
                .into_response(),
            WebhookRejection::Unreadable => {
                (StatusCode::BAD_REQUEST, "cannot read the request body\n").into_response()
            }
            WebhookRejection::BadSignature => StatusCode::UNAUTHORIZED.into_response(),
            WebhookRejection::BadForm => (
                StatusCode::BAD_REQUEST,
                "form-encoded delivery without a `payload` field\n",
            )
                .into_response(),
            WebhookRejection::SlowBody => (
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time\n",
            )
                .into_response(),
            WebhookRejection::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, BUSY_RETRY_AFTER)],
                "too many deliveries in flight; try again\n",
            )
                .into_response(),
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// True if `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under
/// any of `secrets`. The comparison is constant time (`verify_slice`).
pub fn signature_matches<'a>(
    secrets: impl IntoIterator<Item = &'a [u8]>,
    signature: &str,
    body: &[u8],
) -> bool {
    let Some(hex_sig) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    secrets.into_iter().any(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    })
}

impl FromRequest<AppState> for VerifiedWebhook {
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let started = Instant::now();
        // Everything that can be refused without the body is refused before
        // a byte of it is read: a slow or huge upload from someone without
        // a signature costs nothing but its headers.
        // A burst waits a moment for a slot (GitHub never redelivers on its
        // own, so a 503 is a delivery lost until someone redelivers it).
        let slot = tokio::time::timeout(INFLIGHT_WAIT, state.inflight.clone().acquire_owned())
            .await
            .map_err(|_| WebhookRejection::Busy)?
            .map_err(|_| WebhookRejection::Busy)?;
        let headers = req.headers();
        let event = header_str(headers, "x-github-event")
            .ok_or(WebhookRejection::MissingHeader("X-GitHub-Event"))?
            .to_string();
        let delivery = header_str(headers, "x-github-delivery")
            .ok_or(WebhookRejection::MissingHeader("X-GitHub-Delivery"))?
            .to_string();
        if delivery.len() > MAX_DELIVERY_ID_LEN || !delivery.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(WebhookRejection::BadDeliveryId);
        }
        let secrets = state.webhook_secrets();
        if secrets.is_empty() {
            tracing::warn!(delivery_id = %delivery, "delivery refused: no webhook secret is configured");
            return Err(WebhookRejection::BadSignature);
        }
        let signature = header_str(headers, "x-hub-signature-256")
            .ok_or(WebhookRejection::BadSignature)?
            .to_string();
        let declared = header_str(headers, header::CONTENT_LENGTH.as_str())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(WebhookRejection::TooLarge);
        }
        let form = header_str(headers, header::CONTENT_TYPE.as_str())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let read = Bytes::from_request(req, state);
        let body = tokio::time::timeout(state.config.webhook_body_timeout, read)
            .await
            .map_err(|_| WebhookRejection::SlowBody)?
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    WebhookRejection::TooLarge
                } else {
                    WebhookRejection::Unreadable
                }
            })?;
        if !signature_matches(
            secrets.iter().map(|s| s.expose_secret().as_bytes()),
            &signature,
            &body,
        ) {
            return Err(WebhookRejection::BadSignature);
        }
        // Hooks set to "application/x-www-form-urlencoded" send the JSON in
        // a `payload` field; the signature covers the encoded body.
        let payload = if form {
            #[derive(serde::Deserialize)]
            struct Form {
                payload: String,
            }
            let f: Form =
                serde_urlencoded::from_bytes(&body).map_err(|_| WebhookRejection::BadForm)?;
            Bytes::from(f.payload)
        } else {
            body
        };
        Ok(VerifiedWebhook {
            event,
            delivery,
            payload,
            started,
            _slot: slot,
        })
    }
}

/// The handler: parse at the edge, store durably, answer.
pub async fn receive(
    State(state): State<AppState>,
    hook: Result<VerifiedWebhook, WebhookRejection>,
) -> Response {
    let hook = match hook {
        Ok(h) => h,
        Err(rejection) => {
            state.metrics.rejected();
            tracing::debug!(?rejection, "delivery rejected");
            return rejection.into_response();
        }
    };
    let span = tracing::info_span!(
        "delivery",
        delivery_id = %hook.delivery,
        event = %hook.event,
        repo = tracing::field::Empty
    );
    let started = hook.started;
    let (outcome, response) = accept(&state, hook).instrument(span).await;
    state
        .metrics
        .delivery(outcome, started.elapsed().as_secs_f64());
    response
}

async fn accept(state: &AppState, hook: VerifiedWebhook) -> (DeliveryOutcome, Response) {
    let prepared = match intake::prepare(&hook.event, &hook.delivery, &hook.payload) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "delivery rejected: payload does not parse");
            return (
                DeliveryOutcome::Rejected,
                (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
            );
        }
    };
    let is_ping = matches!(prepared, Prepared::Ping(_));
    let delivery = prepared.into_delivery();
    if let Some(repo) = &delivery.repo {
        tracing::Span::current().record("repo", repo.as_str());
    }
    let has_jobs = !delivery.jobs.is_empty();
    let reason = delivery.reason.clone();
    match state.store.record_delivery(delivery).await {
        Ok(Stored::Duplicate) => {
            tracing::debug!("duplicate delivery");
            let status = if is_ping {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            (
                DeliveryOutcome::Duplicate,
                (status, "duplicate delivery\n").into_response(),
            )
        }
        Ok(Stored::Stored) if is_ping => (
            DeliveryOutcome::Ignored,
            (StatusCode::OK, "pong\n").into_response(),
        ),
        Ok(Stored::Stored) if has_jobs => {
            state.wake.notify_one();
            tracing::debug!("delivery accepted");
            (
                DeliveryOutcome::Accepted,
                (StatusCode::ACCEPTED, "accepted\n").into_response(),
            )
        }
        Ok(Stored::Stored) => {
            let reason = reason.unwrap_or_default();
            tracing::debug!(%reason, "delivery ignored");
            (
                DeliveryOutcome::Ignored,
                (StatusCode::ACCEPTED, format!("ignored: {reason}\n")).into_response(),
            )
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot store delivery");
            // No internal detail for GitHub; a non-2xx lets the operator
            // redeliver it from the App's settings.
            (
                DeliveryOutcome::Rejected,
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily unable to accept deliveries\n",
                )
                    .into_response(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_documented_test_vector() {
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let secret: &[u8] = b"It's a Secret to Everybody";
        assert!(signature_matches([secret], sig, b"Hello, World!"));
        assert!(!signature_matches([secret], sig, b"Hello, World?"));
        assert!(signature_matches(
            [b"old".as_slice(), secret],
            sig,
            b"Hello, World!"
        ));
        assert!(!signature_matches(
            [secret],
            "sha1=757107ea",
            b"Hello, World!"
        ));
        assert!(!signature_matches([secret], "sha256=zz", b"Hello, World!"));
    }
}
