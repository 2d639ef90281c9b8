//! The App-manifest registration flow, served while no App is configured
//! (as Probot does): `/` shows a "Register GitHub App" button that posts the
//! manifest to GitHub; GitHub sends the operator back to `/setup/callback`
//! with a one-time code, which we exchange for the App's id, private key and
//! webhook secret, store in a 0600 file, and use from then on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::Sha256;

use super::AppState;
use crate::app_credentials::AppCredentials;
use crate::manifest::manifest_json;

/// How long a registration started on the setup page may take. GitHub's
/// manifest codes themselves expire after an hour.
const STATE_TTL: Duration = Duration::from_secs(3600);
/// How long we wait for GitHub to convert the code.
const CONVERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// The one-time setup token and the registration `state`s derived from it.
///
/// The token is made at start-up and printed to the console only; the
/// setup page and its callback refuse every request that does not prove it
/// (loopback included: behind a reverse proxy on the same host every
/// request comes from loopback). A `state` is the token's HMAC over an issue
/// time and a nonce, so the server keeps nothing per page view: a flood of
/// page views can neither fill memory nor push out the operator's state.
pub struct SetupState {
    token: String,
}

impl Default for SetupState {
    fn default() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SetupState {
            token: hex::encode(bytes),
        }
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SetupState {
    /// The token the setup link carries. Printed once at start-up.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether `offered` is the setup token (constant time).
    pub fn admits(&self, offered: Option<&str>) -> bool {
        let Some(offered) = offered else {
            return false;
        };
        let digest = |value: &str| {
            let mut mac = self.mac();
            mac.update(b"token");
            mac.update(value.as_bytes());
            mac
        };
        let expected = digest(&self.token).finalize().into_bytes();
        digest(offered).verify_slice(&expected).is_ok()
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.token.as_bytes()).expect("HMAC takes any key length")
    }

    fn sign(&self, issued: u64, nonce: &str) -> Hmac<Sha256> {
        let mut mac = self.mac();
        mac.update(b"state");
        mac.update(&issued.to_be_bytes());
        mac.update(nonce.as_bytes());
        mac
    }

    /// A fresh `state` for one registration: issue time, nonce, HMAC (hex).
    fn issue(&self) -> String {
        let issued = unix_secs();
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let nonce = hex::encode(nonce);
        let mac = hex::encode(self.sign(issued, &nonce).finalize().into_bytes());
        format!("{issued:016x}{nonce}{mac}")
    }

    /// Whether `state` was issued by [`issue`](Self::issue) within the TTL.
    fn redeem(&self, state: &str) -> bool {
        if state.len() != 16 + 32 + 64 || !state.is_ascii() {
            return false;
        }
        let (issued, rest) = state.split_at(16);
        let (nonce, mac) = rest.split_at(32);
        let (Ok(issued), Ok(mac)) = (u64::from_str_radix(issued, 16), hex::decode(mac)) else {
            return false;
        };
        let fresh = unix_secs().saturating_sub(issued) < STATE_TTL.as_secs();
        self.sign(issued, nonce).verify_slice(&mac).is_ok() && fresh
    }
}

#[derive(Deserialize)]
pub struct IndexQuery {
    token: Option<String>,
}

/// The page for a visitor without the setup token: says where to look,
/// and nothing about this machine.
fn locked() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(page(
            "Set up agentic",
            "<p>No GitHub App is configured yet. Open the setup link that <code>agentic serve</code> \
             printed when it started (it carries a one-time token).</p>",
        )),
    )
        .into_response()
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
pub async fn index(
    State(state): State<AppState>,
    Query(q): Query<IndexQuery>,
    headers: HeaderMap,
) -> Response {
    if state.app().is_some() {
        return Html(page(
            "agentic is running",
            "<p>A GitHub App is configured. Webhooks go to <code>/api/github/webhooks</code>.</p>",
        ))
        .into_response();
    }
    if !state.setup.admits(q.token.as_deref()) {
        return locked();
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
                "<p>{}</p><p>Start again from the setup link in the server's log.</p>",
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
    if !q.state.as_deref().is_some_and(|s| state.setup.redeem(s)) {
        return fail(
            StatusCode::FORBIDDEN,
            "This registration was not started from this server's setup link, or it expired.",
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
    let creds = match convert(&state.config.github_api_url, &code).await {
        Ok(c) => c,
        Err((status, message)) => return fail(status, &message),
    };
    if creds.webhook_secret.expose_secret().trim().is_empty() {
        tracing::error!("GitHub's answer carries an empty webhook secret");
        return fail(
            StatusCode::BAD_GATEWAY,
            "GitHub's answer carried an empty webhook secret, which would accept anyone's deliveries; nothing was stored.",
        );
    }
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
    registered(&state, &creds)
}

/// Ask GitHub (at `api_url`) to convert the manifest `code` into the new
/// App's credentials; on failure, the status and message to show.
async fn convert(api_url: &str, code: &str) -> Result<AppCredentials, (StatusCode, String)> {
    let url = format!("{api_url}/app-manifests/{code}/conversions");
    let client = match reqwest::Client::builder()
        .user_agent(concat!("agentic/", env!("CARGO_PKG_VERSION")))
        .timeout(CONVERSION_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build an HTTP client");
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error; see the logs.".into(),
            ));
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
            return Err((
                StatusCode::BAD_GATEWAY,
                "Could not reach GitHub to finish the registration. Try again.".into(),
            ));
        }
    };
    let status = response.status();
    if !status.is_success() {
        tracing::warn!(%status, "GitHub refused the manifest code");
        return Err((
            StatusCode::BAD_GATEWAY,
            format!("GitHub refused the registration code ({status}). Codes expire after an hour; start again."),
        ));
    }
    let creds: AppCredentials = match response.json().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "manifest conversion answer does not parse");
            return Err((
                StatusCode::BAD_GATEWAY,
                "GitHub's answer was not an App registration.".into(),
            ));
        }
    };
    Ok(creds)
}

/// The page saying the App is registered and in use, with a link to
/// install it when GitHub gave its address.
fn registered(state: &AppState, creds: &AppCredentials) -> Response {
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
