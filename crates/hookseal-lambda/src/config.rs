//! Settings from environment variables, the way a Vercel-style deployment is
//! configured, with secrets from the environment or from AWS Secrets Manager /
//! SSM Parameter Store through the AWS Parameters and Secrets Lambda
//! Extension's local HTTP interface (no AWS SDK in the binary).
//!
//! | variable | meaning |
//! |---|---|
//! | `INBOUND_SCHEME` | preset name, or a scheme description as JSON (one route) |
//! | `INBOUND_PATH` | that route's path (default `/webhook`) |
//! | `INBOUND_SECRET` / `_ID` / `_PARAMETER` | its secret: value, Secrets Manager id, SSM name |
//! | `INBOUND_SECRET_2` … `_16` (each with `_ID` / `_PARAMETER`) | more secrets during a rotation, numbered without gaps |
//! | `HOOKSEAL_ROUTES` | several routes as JSON: `[{"path", "scheme", "secret_env" / "secret_id" / "secret_parameter", "app"}]` |
//! | `WEBHOOK_URL` | relay every verified message here (POST) |
//! | `OUTBOUND_SCHEME` | relay signature scheme: `x-signature` (default), `native`, `standard`, … |
//! | `WEBHOOK_SECRET` / `_ID` / `_PARAMETER` | the relay's signing secret (one) |
//! | `DATABASE_URL` / `_ID` / `_PARAMETER` | store verified messages in the outbox instead of relaying; enables dispatch |
//! | `HOOKSEAL_APP` | the app id routes store under unless a route names its own `app` (with `DATABASE_URL`) |
//! | `HOOKSEAL_MODE` | `verify-only`: answer verified messages 200 and send them nowhere (neither `WEBHOOK_URL` nor `DATABASE_URL` set) |
//! | `SEALING_KEY` / `_ID` / `_PARAMETER` | the portable flavour's sealing key (armored, as `hookseal keygen --sealing-key` wrote it; several keys one after the other, newest first, during a rotation): opens the sealed secrets the drain signs with |
//! | `DISPATCH_TOKEN` / `_ID` / `_PARAMETER` | bearer token for `POST /dispatch` |
//! | `HOOKSEAL_ALLOW` | CIDRs the dispatcher may deliver to besides public addresses |
//! | `HOOKSEAL_PROXY`, `NO_PROXY` | the drain's deliveries go through this HTTP CONNECT proxy, to the checked address (see hookseal-dispatch's `Proxy`); the relay to `WEBHOOK_URL` follows the usual `HTTPS_PROXY` |
//! | `PGSSLROOTCERT` | extra CA certificates (PEM) for a `?sslmode=require` database URL |
//! | `MAX_BODY_BYTES` | body limit (default 262144) |
//! | `TOLERANCE_SECONDS` | replay tolerance (default [`hookseal::DEFAULT_TOLERANCE`], 300) |
//! | `RELAY_TIMEOUT_SECONDS` | relay timeout (default 10) |
//!
//! **Secrets.** A value is one secret, spaces and all (GitHub's documented
//! example is `It's a Secret to Everybody`); it is never split. During a
//! rotation every configured secret verifies: for the single route add
//! `INBOUND_SECRET_2`, `INBOUND_SECRET_3`, … (each may itself be `_ID` or
//! `_PARAMETER`); in `HOOKSEAL_ROUTES` each of `secret_env`, `secret_id` and
//! `secret_parameter` takes one name or an array of names
//! (`"secret_env": ["GH_OLD", "GH_NEW"]`). A secret shorter than
//! [`Scheme::min_configured_secret_len`] (at least
//! [`hookseal::MIN_CONFIGURED_SECRET_LEN`] characters) is refused at start.
//!
//! **Where verified messages go.** With `DATABASE_URL` they are stored, else
//! with `WEBHOOK_URL` relayed. With neither the function refuses to start,
//! unless `HOOKSEAL_MODE=verify-only` says that verifying is all it should
//! do.
//!
//! **Apps.** In store mode each route stores under its own app (a route's
//! `app`, else `HOOKSEAL_APP`), and no two routes store under one app: the
//! outbox keys events by the provider's message id within an app, and two
//! providers' ids could collide.

use std::time::Duration;

use hookseal::{Location, Scheme, Secret, MAX_SIGNATURES};
use serde::Deserialize;
use zeroize::Zeroizing;

/// Why the function cannot start. Messages name variables, never values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is missing or malformed.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret could not be fetched from the Parameters and Secrets extension.
    #[error(
        "{var}: cannot fetch the secret through the Parameters and Secrets extension: {reason}"
    )]
    Fetch {
        /// The variable naming the secret.
        var: String,
        /// What went wrong (status or transport error; never the value).
        reason: String,
    },
}

fn invalid(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: var.to_owned(),
        reason: reason.into(),
    }
}

/// One receiving route.
pub struct RouteConfig {
    /// The path, e.g. `/webhook`.
    pub path: String,
    /// How requests on it are signed.
    pub scheme: Scheme,
    /// Secrets accepted on it.
    pub secrets: Vec<Secret>,
    /// The app its verified messages are stored under (with a database).
    pub app: Option<String>,
}

/// Everything the function needs, resolved at cold start.
pub struct Settings {
    /// Receiving routes.
    pub routes: Vec<RouteConfig>,
    /// Largest body accepted.
    pub max_body: usize,
    /// Replay tolerance.
    pub tolerance: Duration,
    /// Relay target, when set.
    pub relay: Option<RelayConfig>,
    /// Database, when set.
    pub database: Option<DatabaseConfig>,
    /// Bearer token for `POST /dispatch`.
    pub dispatch_token: Option<Zeroizing<String>>,
    /// Extra destinations the dispatcher may reach.
    pub allow: Vec<hookseal_dispatch::IpNet>,
    /// The drain's egress proxy.
    pub proxy: Option<hookseal_dispatch::Proxy>,
}

/// Where and how verified messages are relayed.
pub struct RelayConfig {
    /// `WEBHOOK_URL`.
    pub url: String,
    /// The outbound scheme (signature in a header).
    pub scheme: Scheme,
    /// The outbound secret.
    pub secret: Secret,
    /// Timeout of the relay request.
    pub timeout: Duration,
}

/// The outbox database.
pub struct DatabaseConfig {
    /// Connection URL (may carry a password; never logged).
    pub url: Zeroizing<String>,
    /// The portable flavour's sealing keys, parsed from `SEALING_KEY`.
    pub sealing_keys: Option<std::sync::Arc<hookseal::SealingKeys>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    path: String,
    scheme: SchemeSpec,
    #[serde(default)]
    secret_env: Option<Names>,
    #[serde(default)]
    secret_id: Option<Names>,
    #[serde(default)]
    secret_parameter: Option<Names>,
    #[serde(default)]
    app: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SchemeSpec {
    Preset(String),
    Described(Box<Scheme>),
}

/// One name, or several (a rotation), of variables, secrets or parameters.
#[derive(Deserialize)]
#[serde(untagged)]
enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn list(&self) -> &[String] {
        match self {
            Names::One(n) => std::slice::from_ref(n),
            Names::Many(v) => v,
        }
    }
}

/// Where one route's secrets come from.
enum SecretSource<'a> {
    Env(&'a [String]),
    SecretsManager(&'a [String]),
    Parameter(&'a [String]),
}

/// A secret value and the name it is reported under.
type Named = (String, Zeroizing<String>);

/// The one mode that is asked for by name; the others follow from
/// `WEBHOOK_URL` / `DATABASE_URL`.
const VERIFY_ONLY: &str = "verify-only";

/// Reads variables through `env` (so tests need not touch the process
/// environment) and fetches secrets with `fetch`.
pub struct Loader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    extension: Extension,
}

/// The AWS Parameters and Secrets Lambda Extension's local HTTP interface.
#[derive(Clone)]
pub struct Extension {
    /// `http://localhost:<port>` (port from `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`, default 2773).
    pub base: String,
    /// `AWS_SESSION_TOKEN`, sent as `X-Aws-Parameters-Secrets-Token`.
    pub token: Option<Zeroizing<String>>,
}

impl<'a> Loader<'a> {
    /// A loader over `env`.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        let port = env("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT").unwrap_or_else(|| "2773".into());
        Loader {
            env,
            extension: Extension {
                base: format!("http://localhost:{port}"),
                token: env("AWS_SESSION_TOKEN").map(Zeroizing::new),
            },
        }
    }

    /// Resolves every setting.
    pub async fn load(&self) -> Result<Settings, ConfigError> {
        let verify_only = self.verify_only()?;
        let store = self.is_set("DATABASE_URL");
        let mut routes = self.listed_routes(store).await?;
        routes.extend(self.inbound_route(store).await?);
        check_paths(&routes)?;
        check_apps(&routes)?;
        let relay = self.relay().await?;
        let sealing_keys = match self.secret_value("SEALING_KEY").await? {
            None => None,
            Some(text) => Some(std::sync::Arc::new(
                hookseal::SealingKeys::parse(&text)
                    .map_err(|e| invalid("SEALING_KEY", e.to_string()))?,
            )),
        };
        let database = self
            .secret_value("DATABASE_URL")
            .await?
            .map(|url| DatabaseConfig { url, sealing_keys });
        check_destination(&routes, relay.is_some(), database.is_some(), verify_only)?;
        Ok(Settings {
            routes,
            max_body: self.number("MAX_BODY_BYTES", hookseal::DEFAULT_MAX_BODY)?,
            tolerance: Duration::from_secs(
                self.number("TOLERANCE_SECONDS", hookseal::DEFAULT_TOLERANCE.as_secs())?,
            ),
            relay,
            database,
            dispatch_token: self.secret_value("DISPATCH_TOKEN").await?,
            allow: self.allow()?,
            proxy: self.proxy()?,
        })
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.trim().is_empty())
    }

    /// Whether `NAME`, `NAME_ID` or `NAME_PARAMETER` is set (nothing fetched).
    fn is_set(&self, name: &str) -> bool {
        ["", "_ID", "_PARAMETER"]
            .iter()
            .any(|suffix| self.var(&format!("{name}{suffix}")).is_some())
    }

    /// `NAME`, or the secret named by `NAME_ID` (Secrets Manager) or
    /// `NAME_PARAMETER` (SSM, decrypted).
    async fn secret_value(&self, name: &str) -> Result<Option<Zeroizing<String>>, ConfigError> {
        if let Some(v) = self.var(name) {
            return Ok(Some(Zeroizing::new(v)));
        }
        let id_var = format!("{name}_ID");
        if let Some(id) = self.var(&id_var) {
            return self.extension.secrets_manager(&id_var, &id).await.map(Some);
        }
        let param_var = format!("{name}_PARAMETER");
        if let Some(p) = self.var(&param_var) {
            return self.extension.parameter(&param_var, &p).await.map(Some);
        }
        Ok(None)
    }

    /// `NAME`, `NAME_2`, … `NAME_16`, each by [`Loader::secret_value`]:
    /// numbered without a gap. Empty when `NAME` is not set at all.
    async fn numbered_secrets(&self, name: &str) -> Result<Vec<Named>, ConfigError> {
        let names: Vec<String> = std::iter::once(name.to_owned())
            .chain((2..=MAX_SIGNATURES + 1).map(|n| format!("{name}_{n}")))
            .collect();
        let count = names.iter().take_while(|n| self.is_set(n)).count();
        if count > MAX_SIGNATURES {
            let reason = format!("at most {MAX_SIGNATURES} secrets");
            return Err(invalid(&names[MAX_SIGNATURES], reason));
        }
        if let Some(after_gap) = names[count..].iter().find(|n| self.is_set(n)) {
            let reason = format!(
                "set, but {} is not: number secrets without gaps",
                names[count]
            );
            return Err(invalid(after_gap, reason));
        }
        let mut out = Vec::with_capacity(count);
        for n in &names[..count] {
            if let Some(v) = self.secret_value(n).await? {
                out.push((n.clone(), v));
            }
        }
        Ok(out)
    }

    /// The routes of `HOOKSEAL_ROUTES`.
    async fn listed_routes(&self, store: bool) -> Result<Vec<RouteConfig>, ConfigError> {
        let Some(json) = self.var("HOOKSEAL_ROUTES") else {
            return Ok(Vec::new());
        };
        let specs: Vec<RouteSpec> =
            serde_json::from_str(&json).map_err(|e| invalid("HOOKSEAL_ROUTES", e.to_string()))?;
        let mut routes = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            routes.push(self.listed_route(i, spec, store).await?);
        }
        Ok(routes)
    }

    async fn listed_route(
        &self,
        i: usize,
        spec: RouteSpec,
        store: bool,
    ) -> Result<RouteConfig, ConfigError> {
        let var = format!("HOOKSEAL_ROUTES[{i}]");
        let source = match (&spec.secret_env, &spec.secret_id, &spec.secret_parameter) {
            (Some(n), None, None) => SecretSource::Env(n.list()),
            (None, Some(n), None) => SecretSource::SecretsManager(n.list()),
            (None, None, Some(n)) => SecretSource::Parameter(n.list()),
            _ => {
                return Err(invalid(
                    &var,
                    "give exactly one of secret_env, secret_id, secret_parameter",
                ))
            }
        };
        let scheme = Self::scheme(&var, spec.scheme)?;
        let values = self.route_secrets(&var, source).await?;
        Ok(RouteConfig {
            path: spec.path,
            secrets: checked_secrets(&scheme, values)?,
            scheme,
            app: self.route_app(&var, spec.app, store)?,
        })
    }

    /// One route's secrets, one per name, each reported under its variable
    /// (`secret_env`) or its place in the route (`…secret_id[1]`).
    async fn route_secrets(
        &self,
        var: &str,
        source: SecretSource<'_>,
    ) -> Result<Vec<Named>, ConfigError> {
        let (field, names) = match source {
            SecretSource::Env(n) => ("secret_env", n),
            SecretSource::SecretsManager(n) => ("secret_id", n),
            SecretSource::Parameter(n) => ("secret_parameter", n),
        };
        if names.is_empty() || names.len() > MAX_SIGNATURES {
            return Err(invalid(
                var,
                format!("{field}: give 1 to {MAX_SIGNATURES} names"),
            ));
        }
        let mut out = Vec::with_capacity(names.len());
        for (j, name) in names.iter().enumerate() {
            let place = format!("{var}.{field}[{j}]");
            out.push(match source {
                SecretSource::Env(_) => {
                    let value = self.var(name).ok_or_else(|| invalid(name, "not set"))?;
                    (name.clone(), Zeroizing::new(value))
                }
                SecretSource::SecretsManager(_) => {
                    let value = self.extension.secrets_manager(&place, name).await?;
                    (place, value)
                }
                SecretSource::Parameter(_) => {
                    let value = self.extension.parameter(&place, name).await?;
                    (place, value)
                }
            });
        }
        Ok(out)
    }

    /// The route of `INBOUND_SCHEME`, when set.
    async fn inbound_route(&self, store: bool) -> Result<Option<RouteConfig>, ConfigError> {
        let Some(scheme) = self.var("INBOUND_SCHEME") else {
            return Ok(None);
        };
        let values = self.numbered_secrets("INBOUND_SECRET").await?;
        if values.is_empty() {
            return Err(invalid("INBOUND_SECRET", "not set (nor _ID, _PARAMETER)"));
        }
        let scheme =
            Scheme::from_text(&scheme).map_err(|e| invalid("INBOUND_SCHEME", e.to_string()))?;
        Ok(Some(RouteConfig {
            path: self
                .var("INBOUND_PATH")
                .unwrap_or_else(|| "/webhook".into()),
            secrets: checked_secrets(&scheme, values)?,
            scheme,
            app: self.route_app("INBOUND_SCHEME", None, store)?,
        }))
    }

    /// The app a route stores under: its own `app`, else `HOOKSEAL_APP`;
    /// `None` without a database (where an own `app` is a mistake).
    fn route_app(
        &self,
        var: &str,
        own: Option<String>,
        store: bool,
    ) -> Result<Option<String>, ConfigError> {
        match (own, store) {
            (Some(_), false) => Err(invalid(var, "`app` needs DATABASE_URL (store mode)")),
            (None, false) => Ok(None),
            (Some(app), true) if app.trim().is_empty() => Err(invalid(var, "`app` is empty")),
            (Some(app), true) => Ok(Some(app)),
            (None, true) => self.var("HOOKSEAL_APP").map(Some).ok_or_else(|| {
                invalid(
                    "HOOKSEAL_APP",
                    format!(
                        "required with DATABASE_URL for the route of {var} (or give each \
                         route of HOOKSEAL_ROUTES its own `app`)"
                    ),
                )
            }),
        }
    }

    /// `WEBHOOK_URL` with its scheme and one secret, when set.
    async fn relay(&self) -> Result<Option<RelayConfig>, ConfigError> {
        let Some(url) = self.var("WEBHOOK_URL") else {
            return Ok(None);
        };
        let parsed =
            reqwest::Url::parse(&url).map_err(|e| invalid("WEBHOOK_URL", e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("WEBHOOK_URL", "must be an http(s) URL"));
        }
        let name = self
            .var("OUTBOUND_SCHEME")
            .unwrap_or_else(|| "x-signature".into());
        let scheme = Self::scheme("OUTBOUND_SCHEME", SchemeSpec::Preset(name))?;
        if !matches!(scheme.signature, Location::Header(_)) {
            return Err(invalid(
                "OUTBOUND_SCHEME",
                "the relay signs with a header scheme",
            ));
        }
        if self.is_set("WEBHOOK_SECRET_2") {
            return Err(invalid(
                "WEBHOOK_SECRET_2",
                "the relay signs with one secret (WEBHOOK_SECRET)",
            ));
        }
        let value = self
            .secret_value("WEBHOOK_SECRET")
            .await?
            .ok_or_else(|| invalid("WEBHOOK_SECRET", "not set (nor _ID, _PARAMETER)"))?;
        let secret = checked_secret(&scheme, "WEBHOOK_SECRET", value)?;
        Ok(Some(RelayConfig {
            url,
            scheme,
            secret,
            timeout: Duration::from_secs(self.number("RELAY_TIMEOUT_SECONDS", 10u64)?),
        }))
    }

    /// `HOOKSEAL_MODE`: `verify-only`, or unset.
    fn verify_only(&self) -> Result<bool, ConfigError> {
        match self.var("HOOKSEAL_MODE") {
            None => Ok(false),
            Some(m) if m.trim() == VERIFY_ONLY => Ok(true),
            Some(_) => Err(invalid(
                "HOOKSEAL_MODE",
                format!(
                    "the one mode is `{VERIFY_ONLY}`; leave it unset to relay (WEBHOOK_URL) \
                     or store (DATABASE_URL)"
                ),
            )),
        }
    }

    fn proxy(&self) -> Result<Option<hookseal_dispatch::Proxy>, ConfigError> {
        let Some(url) = self.var("HOOKSEAL_PROXY") else {
            return Ok(None);
        };
        hookseal_dispatch::Proxy::with_env_no_proxy(&url, |k| self.var(k))
            .map(Some)
            .map_err(|e| invalid("HOOKSEAL_PROXY", e))
    }

    fn allow(&self) -> Result<Vec<hookseal_dispatch::IpNet>, ConfigError> {
        let Some(list) = self.var("HOOKSEAL_ALLOW") else {
            return Ok(Vec::new());
        };
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse()
                    .map_err(|_| invalid("HOOKSEAL_ALLOW", format!("`{s}` is not a CIDR network")))
            })
            .collect()
    }

    fn scheme(var: &str, spec: SchemeSpec) -> Result<Scheme, ConfigError> {
        let scheme = match spec {
            SchemeSpec::Preset(text) => Scheme::from_text(&text),
            SchemeSpec::Described(s) => s.validate().map(|()| *s),
        };
        scheme.map_err(|e| invalid(var, e.to_string()))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.var(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| invalid(name, "not a number")),
        }
    }
}

fn checked_secrets(scheme: &Scheme, values: Vec<Named>) -> Result<Vec<Secret>, ConfigError> {
    values
        .into_iter()
        .map(|(name, value)| checked_secret(scheme, &name, value))
        .collect()
}

/// One secret, whole (never split): long enough for `scheme`. Whitespace in
/// it is kept, with a warning (before 0.3.0 it separated rotation secrets).
fn checked_secret(
    scheme: &Scheme,
    name: &str,
    value: Zeroizing<String>,
) -> Result<Secret, ConfigError> {
    let secret = Secret::new(value.as_str()).map_err(|e| invalid(name, e.to_string()))?;
    scheme
        .check_configured_secret(&secret)
        .map_err(|e| invalid(name, e.to_string()))?;
    if value.chars().any(char::is_whitespace) {
        tracing::warn!(
            variable = name,
            "the secret holds whitespace and is used whole, as one secret; \
             several secrets are numbered variables (NAME_2, …) or arrays of names"
        );
    }
    Ok(secret)
}

fn check_paths(routes: &[RouteConfig]) -> Result<(), ConfigError> {
    let url_safe = |b: u8| b.is_ascii_alphanumeric() || b"/-._~".contains(&b);
    for (i, r) in routes.iter().enumerate() {
        if !r.path.starts_with('/')
            || r.path == "/dispatch"
            || r.path.len() > 512
            || !r.path.bytes().all(url_safe)
        {
            return Err(invalid(
                "routes",
                format!(
                    "path `{}` must start with /, use only letters, digits and / - . _ ~, \
                     and not be /dispatch",
                    r.path
                ),
            ));
        }
        if routes[..i].iter().any(|o| o.path == r.path) {
            return Err(invalid(
                "routes",
                format!("path `{}` is configured twice", r.path),
            ));
        }
    }
    Ok(())
}

/// No two routes store under one app: message ids are unique per app, and
/// two providers' ids could collide.
fn check_apps(routes: &[RouteConfig]) -> Result<(), ConfigError> {
    for (i, r) in routes.iter().enumerate() {
        let Some(app) = &r.app else { continue };
        if let Some(o) = routes[..i].iter().find(|o| o.app.as_ref() == Some(app)) {
            return Err(invalid(
                "routes",
                format!(
                    "`{}` and `{}` both store into app `{app}`, where their providers' message \
                     ids could collide: give each route its own `app` (HOOKSEAL_ROUTES' \
                     `app`; HOOKSEAL_APP is the default)",
                    o.path, r.path
                ),
            ));
        }
    }
    Ok(())
}

/// Verified messages go somewhere (a relay or a database), or the operator
/// asked for verify-only; verify-only with a destination is a contradiction.
fn check_destination(
    routes: &[RouteConfig],
    relay: bool,
    database: bool,
    verify_only: bool,
) -> Result<(), ConfigError> {
    if routes.is_empty() && !database {
        return Err(invalid(
            "INBOUND_SCHEME",
            "nothing to do: configure a route (INBOUND_SCHEME or HOOKSEAL_ROUTES) or DATABASE_URL",
        ));
    }
    match (verify_only, relay || database) {
        (true, true) => Err(invalid(
            "HOOKSEAL_MODE",
            format!("`{VERIFY_ONLY}` sends nothing on: unset it, or WEBHOOK_URL and DATABASE_URL"),
        )),
        (false, false) => Err(invalid(
            "WEBHOOK_URL / DATABASE_URL",
            format!(
                "verified messages would go nowhere: set WEBHOOK_URL (relay) or DATABASE_URL \
                 (store), or HOOKSEAL_MODE={VERIFY_ONLY} to answer them without sending them on"
            ),
        )),
        _ => Ok(()),
    }
}

impl Extension {
    async fn get(
        &self,
        var: &str,
        path_and_query: String,
    ) -> Result<serde_json::Value, ConfigError> {
        let fetch = |reason: String| ConfigError::Fetch {
            var: var.to_owned(),
            reason,
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| fetch(e.to_string()))?;
        let mut req = client.get(format!("{}{path_and_query}", self.base));
        if let Some(t) = &self.token {
            req = req.header("X-Aws-Parameters-Secrets-Token", t.as_str());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| fetch(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fetch(format!("HTTP {status}")));
        }
        let text = Zeroizing::new(
            resp.text()
                .await
                .map_err(|e| fetch(e.without_url().to_string()))?,
        );
        serde_json::from_str(&text).map_err(|_| fetch("answer is not JSON".into()))
    }

    /// `GET /secretsmanager/get?secretId=…` → `SecretString`.
    pub async fn secrets_manager(
        &self,
        var: &str,
        id: &str,
    ) -> Result<Zeroizing<String>, ConfigError> {
        let v = self
            .get(
                var,
                format!(
                    "/secretsmanager/get?secretId={}",
                    hookseal::percent_encode(id)
                ),
            )
            .await?;
        v.get("SecretString")
            .and_then(|s| s.as_str())
            .map(|s| Zeroizing::new(s.to_owned()))
            .ok_or_else(|| ConfigError::Fetch {
                var: var.to_owned(),
                reason: "no SecretString in the answer (binary secrets are not supported)".into(),
            })
    }

    /// `GET /systemsmanager/parameters/get?name=…&withDecryption=true` → `Parameter.Value`.
    pub async fn parameter(&self, var: &str, name: &str) -> Result<Zeroizing<String>, ConfigError> {
        let v = self
            .get(
                var,
                format!(
                    "/systemsmanager/parameters/get?name={}&withDecryption=true",
                    hookseal::percent_encode(name)
                ),
            )
            .await?;
        v.pointer("/Parameter/Value")
            .and_then(|s| s.as_str())
            .map(|s| Zeroizing::new(s.to_owned()))
            .ok_or_else(|| ConfigError::Fetch {
                var: var.to_owned(),
                reason: "no Parameter.Value in the answer".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str, app: Option<&str>) -> RouteConfig {
        RouteConfig {
            path: path.into(),
            scheme: Scheme::preset("github").unwrap(),
            secrets: Vec::new(),
            app: app.map(Into::into),
        }
    }

    #[test]
    fn no_two_routes_store_into_one_app() {
        let ok = [route("/a", Some("app_a")), route("/b", Some("app_b"))];
        assert!(check_apps(&ok).is_ok());
        // Without a database no route has an app: nothing to collide.
        assert!(check_apps(&[route("/a", None), route("/b", None)]).is_ok());
        let clash = [
            route("/a", Some("app_a")),
            route("/b", Some("app_b")),
            route("/c", Some("app_a")),
        ];
        let err = check_apps(&clash).unwrap_err().to_string();
        assert!(
            err.contains("`/a` and `/c`") && err.contains("app `app_a`"),
            "{err}"
        );
        assert!(err.contains("give each route its own `app`"), "{err}");
    }

    #[test]
    fn verified_messages_need_a_destination_or_verify_only() {
        let routes = [route("/a", None)];
        // (relay, database, verify_only) -> loads?
        for (relay, database, verify_only, ok) in [
            (true, false, false, true),
            (false, true, false, true),
            (true, true, false, true),
            (false, false, true, true),
            (false, false, false, false),
            (true, false, true, false),
            (false, true, true, false),
        ] {
            let r = check_destination(&routes, relay, database, verify_only);
            assert_eq!(r.is_ok(), ok, "{relay} {database} {verify_only}: {r:?}");
        }
        // Dispatch only (a database, no route) needs no mode.
        assert!(check_destination(&[], false, true, false).is_ok());
        assert!(check_destination(&[], false, false, true).is_err());
    }
}
