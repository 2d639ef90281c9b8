//! The App-manifest registration flow, served while no App is configured
//! (as Probot does): `/` shows a "Register GitHub App" button that posts the
//! manifest to GitHub; GitHub sends the operator back to `/setup/callback`
//! with a one-time code, which we exchange for the App's id, private key and
//! webhook secret, store in a 0600 file, and use from then on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use crate::app_credentials::AppCredentials;
use crate::manifest::manifest_json;

/// How long a registration started on the setup page may take. GitHub's
/// manifest codes themselves expire after an hour.
const STATE_TTL: Duration = Duration::from_secs(3600);
/// How long we wait for GitHub to convert the code.
const CONVERSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Most registrations that may be pending at once (each page view starts one).
const MAX_PENDING: usize = 1000;

/// The `state` values handed out by the setup page: the callback accepts
/// only these, so nobody can make this service adopt an App they created
/// by sending its operator a crafted callback link.
#[derive(Default)]
pub struct SetupState {
    pending: Mutex<HashMap<String, Instant>>,
}

impl SetupState {
    fn issue(&self) -> String {
        let state = uuid::Uuid::new_v4().simple().to_string();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, at| at.elapsed() < STATE_TTL);
        if pending.len() >= MAX_PENDING {
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(state.clone(), Instant::now());
        state
    }

    fn redeem(&self, state: &str) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        matches!(pending.remove(state), Some(at) if at.elapsed() < STATE_TTL)
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
         button{{font-size:1rem;padding:.5rem 1rem}}code{{background:#f3f3f3;padding:0 .2rem}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = html_escape::encode_text(title),
    )
}

/// Where GitHub can reach us: the configured public URL, else the address
/// the page was opened at.
fn public_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.config.public_url {
        return u.clone();
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:3000");
    format!("http://{host}")
}

/// `GET /`: the setup page, or a short status once an App is configured.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(app) = state.app() {
        return Html(page(
            "agentic is running",
            &format!(
                "<p>GitHub App <code>{}</code> is configured. Webhooks go to <code>/api/github/webhooks</code>.</p>",
                app.app_id
            ),
        ))
        .into_response();
    }
    let public = public_url(&state, &headers);
    let manifest = match manifest_json(&public) {
        Ok(m) => m.to_string(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot build the App manifest");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the App manifest is broken",
            )
                .into_response();
        }
    };
    let setup_state = state.setup.issue();
    let web = &state.config.github_web_url;
    let body = format!(
        r#"<p>No GitHub App is configured yet. Register one with the permissions and events in
<code>app-manifest.yml</code>; GitHub will send you back here and agentic will store the App's
credentials in <code>{path}</code> (readable only by this user) and start using them.</p>
<p>Webhooks will be sent to <code>{public}/api/github/webhooks</code>. If GitHub cannot reach that
address, set <code>AGENTIC_PUBLIC_URL</code> and reload this page.</p>
<form id="register" method="post" action="{web}/settings/apps/new?state={state}">
<input type="hidden" name="manifest" value="{manifest}">
<p><label>Organization (leave empty for your personal account):
<input id="org" name="org" pattern="[A-Za-z0-9-]*" autocomplete="off"></label></p>
<button type="submit">Register GitHub App</button>
</form>
<script>
document.getElementById("register").addEventListener("submit", function (e) {{
  var org = document.getElementById("org").value.trim();
  if (org) {{ e.target.action = "{web}/organizations/" + encodeURIComponent(org) + "/settings/apps/new?state={state}"; }}
}});
</script>"#,
        path = html_escape::encode_text(&state.config.credentials_path.display().to_string()),
        public = html_escape::encode_text(&public),
        web = html_escape::encode_double_quoted_attribute(web),
        state = setup_state,
        manifest = html_escape::encode_double_quoted_attribute(&manifest),
    );
    Html(page("Set up agentic", &body)).into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

fn fail(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(page(
            "Registration failed",
            &format!(
                "<p>{}</p><p><a href=\"/\">Start again</a></p>",
                html_escape::encode_text(message)
            ),
        )),
    )
        .into_response()
}

/// `GET /setup/callback?code=…&state=…`: exchange the code for credentials.
pub async fn callback(State(state): State<AppState>, Query(q): Query<CallbackQuery>) -> Response {
    if state.app().is_some() {
        return fail(
            StatusCode::CONFLICT,
            "A GitHub App is already configured; remove its credentials first to register another.",
        );
    }
    let Some(code) = q.code.filter(|c| {
        !c.is_empty()
            && c.len() <= 100
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "The callback carries no valid `code`.",
        );
    };
    if !q.state.as_deref().is_some_and(|s| state.setup.redeem(s)) {
        return fail(
            StatusCode::BAD_REQUEST,
            "This registration was not started from this server's setup page, or it expired.",
        );
    }
    let url = format!(
        "{}/app-manifests/{code}/conversions",
        state.config.github_api_url
    );
    let client = match reqwest::Client::builder()
        .user_agent(concat!("agentic/", env!("CARGO_PKG_VERSION")))
        .timeout(CONVERSION_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build an HTTP client");
            return fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error; see the logs.",
            );
        }
    };
    let response = client
        .post(&url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "manifest conversion request failed");
            return fail(
                StatusCode::BAD_GATEWAY,
                "Could not reach GitHub to finish the registration. Try again.",
            );
        }
    };
    let status = response.status();
    if !status.is_success() {
        tracing::warn!(%status, "GitHub refused the manifest code");
        return fail(
            StatusCode::BAD_GATEWAY,
            &format!("GitHub refused the registration code ({status}). Codes expire after an hour; start again."),
        );
    }
    let creds: AppCredentials = match response.json().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "manifest conversion answer does not parse");
            return fail(
                StatusCode::BAD_GATEWAY,
                "GitHub's answer was not an App registration.",
            );
        }
    };
    if let Err(e) = creds.save_new(&state.config.credentials_path) {
        tracing::error!(error = %format!("{e:#}"), "cannot store the App credentials");
        return fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "Could not write {}; see the logs. The App exists on GitHub: delete it there before trying again.",
                state.config.credentials_path.display()
            ),
        );
    }
    tracing::info!(app_id = creds.id, path = %state.config.credentials_path.display(), "GitHub App registered and stored");
    if let Err(e) = state.install_app(creds.github_app(), creds.webhook_secret.clone()) {
        tracing::error!(error = %format!("{e:#}"), "the registered App's key cannot be used");
        return fail(
            StatusCode::BAD_GATEWAY,
            "GitHub's answer carried a private key that cannot be used; see the logs.",
        );
    }
    let name = creds
        .name
        .clone()
        .or(creds.slug.clone())
        .unwrap_or_else(|| creds.id.to_string());
    let install = creds
        .html_url
        .as_deref()
        .map(|u| {
            format!(
                "<p><a href=\"{}/installations/new\">Install it on your repositories</a>.</p>",
                html_escape::encode_double_quoted_attribute(u)
            )
        })
        .unwrap_or_default();
    Html(page(
        "GitHub App registered",
        &format!(
            "<p>App <strong>{}</strong> (id {}) is registered; its credentials are stored in <code>{}</code> and in use now.</p>{install}",
            html_escape::encode_text(&name),
            creds.id,
            html_escape::encode_text(&state.config.credentials_path.display().to_string()),
        ),
    ))
    .into_response()
}
