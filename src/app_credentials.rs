//! The App credentials the manifest flow hands us, kept in a local file that
//! only this user can read (mode 0600), and used from then on.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The GitHub App's identity, from the environment or the setup flow.
#[derive(Debug, Clone)]
pub struct GitHubApp {
    pub app_id: u64,
    pub private_key: SecretString,
}

/// What `POST /app-manifests/{code}/conversions` returns, the parts we keep.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AppCredentials {
    /// GitHub's App id.
    pub id: u64,
    pub slug: Option<String>,
    pub name: Option<String>,
    pub html_url: Option<String>,
    pub client_id: Option<String>,
    #[serde(with = "secret_opt")]
    pub client_secret: Option<SecretString>,
    #[serde(with = "secret")]
    pub webhook_secret: SecretString,
    #[serde(with = "secret")]
    pub pem: SecretString,
}

impl AppCredentials {
    pub fn github_app(&self) -> GitHubApp {
        GitHubApp {
            app_id: self.id,
            private_key: self.pem.clone(),
        }
    }

    /// Read the file if it exists.
    pub fn load(path: &Path) -> anyhow::Result<Option<AppCredentials>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        let creds = serde_json::from_str(&text).with_context(|| {
            format!(
                "`{}` is not a credentials file written by agentic",
                path.display()
            )
        })?;
        Ok(Some(creds))
    }

    /// Write the file atomically with mode 0600, refusing to replace one.
    pub fn save_new(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".agentic-app.{}.tmp", uuid::Uuid::new_v4()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let write = || -> anyhow::Result<()> {
            let mut f = options
                .open(&tmp)
                .with_context(|| format!("cannot create `{}`", tmp.display()))?;
            f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
            f.sync_all()?;
            // A hard link fails if the target exists: never overwrite an App.
            std::fs::hard_link(&tmp, path).with_context(|| {
                format!(
                    "cannot create `{}` (does it already exist?)",
                    path.display()
                )
            })?;
            // The new name is durable only once the directory is: without
            // this a power cut can lose a registration GitHub already made.
            #[cfg(unix)]
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot sync `{}`", dir.display()))?;
            Ok(())
        };
        let result = write();
        let _ = std::fs::remove_file(&tmp);
        result
    }
}

mod secret {
    use super::*;
    pub fn serialize<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose_secret())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(de: D) -> Result<SecretString, D::Error> {
        Ok(SecretString::from(String::deserialize(de)?))
    }
}

mod secret_opt {
    use super::*;
    pub fn serialize<S: serde::Serializer>(
        s: &Option<SecretString>,
        ser: S,
    ) -> Result<S::Ok, S::Error> {
        match s {
            Some(s) => ser.serialize_some(s.expose_secret()),
            None => ser.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        de: D,
    ) -> Result<Option<SecretString>, D::Error> {
        Ok(Option::<String>::deserialize(de)?.map(SecretString::from))
    }
}
