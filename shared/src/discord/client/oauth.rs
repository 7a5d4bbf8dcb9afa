//! OAuth2 authorization-code grant with the `oauth2` crate, sent through our own transport (so
//! token calls get the User-Agent, retries and stats like every other call). Revocation is posted
//! by hand: `oauth2` 5 refuses a non-https revocation URL, which rules out the emulator.

use base64::Engine;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, ErrorResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardErrorResponse, TokenResponse, TokenUrl,
};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::pin::Pin;

use super::transport::{Auth, Call, Transport};
use super::DiscordClient;
use crate::discord::model::{AuthorizationRequest, TokenSet};
use crate::discord::{DiscordError, DiscordResult};

/// What we ask members for: who they are, and the right to add them to the guild.
const SCOPES: [&str; 2] = ["identify", "guilds.join"];
pub use crate::domain::linked_roles::ROLE_CONNECTIONS_WRITE;

fn scopes(role_connections: bool) -> Vec<&'static str> {
    let mut scopes = SCOPES.to_vec();
    if role_connections {
        scopes.push(ROLE_CONNECTIONS_WRITE);
    }
    scopes
}
const TOKEN_ROUTE: &str = "/oauth2/token";
const REVOKE_ROUTE: &str = "/oauth2/token/revoke";
/// Discord's access-token lifetime, assumed when a token response leaves `expires_in` out.
const DEFAULT_EXPIRES_IN: i64 = 604_800;

/// Random bytes of an OAuth `state`: base64url without padding, [`STATE_CHARS`] characters.
const STATE_BYTES: u32 = 16;
pub(crate) const STATE_CHARS: usize = (STATE_BYTES as usize * 4).div_ceil(3);

/// Whether `state` could be one we generated: exactly [`STATE_CHARS`] base64url characters.
/// Anything else is refused before the store is asked.
pub fn is_well_formed_state(state: &str) -> bool {
    state.len() == STATE_CHARS
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

type OAuthError = RequestTokenError<DiscordError, StandardErrorResponse<BasicErrorResponseType>>;

impl DiscordClient {
    pub(super) fn build_authorization_request(
        &self,
        role_connections: bool,
    ) -> AuthorizationRequest {
        let scopes = scopes(role_connections);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random_len(STATE_BYTES);
        let url = match (
            AuthUrl::new(self.config.authorize_url.clone()),
            RedirectUrl::new(self.config.redirect_uri.clone()),
        ) {
            (Ok(auth_url), Ok(redirect)) => {
                BasicClient::new(ClientId::new(self.config.application_id.clone()))
                    .set_auth_uri(auth_url)
                    .set_redirect_uri(redirect)
                    .authorize_url(|| state.clone())
                    .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
                    .add_extra_param("prompt", "consent")
                    .set_pkce_challenge(challenge)
                    .url()
                    .0
                    .to_string()
            }
            _ => {
                // Configuration is validated at start-up; never panic on a request path.
                tracing::error!("authorize_url or redirect_uri is not a valid URL");
                self.authorize_url_unchecked(&state, &challenge, &scopes)
            }
        };
        AuthorizationRequest {
            url,
            state: SecretString::from(state.secret().to_owned()),
            pkce_verifier: SecretString::from(verifier.secret().to_owned()),
        }
    }

    /// The same URL, without the `oauth2` crate's URL validation.
    fn authorize_url_unchecked(
        &self,
        state: &CsrfToken,
        challenge: &PkceCodeChallenge,
        scopes: &[&str],
    ) -> String {
        let scope = scopes.join(" ");
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", self.config.application_id.as_str()),
            ("state", state.secret().as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", challenge.method().as_str()),
            ("redirect_uri", self.config.redirect_uri.as_str()),
            ("scope", scope.as_str()),
            ("prompt", "consent"),
        ])
        .unwrap_or_default();
        let separator = if self.config.authorize_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}{query}", self.config.authorize_url)
    }

    fn oauth_client(&self) -> DiscordResult<BasicClient> {
        let secret = self
            .config
            .client_secret
            .as_ref()
            .ok_or(DiscordError::NotConfigured("client secret"))?;
        Ok(
            BasicClient::new(ClientId::new(self.config.application_id.clone()))
                .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned())),
        )
    }

    fn token_url(&self) -> DiscordResult<TokenUrl> {
        TokenUrl::new(self.url(TOKEN_ROUTE))
            .map_err(|_| DiscordError::NotConfigured("valid api_base"))
    }

    pub(super) async fn exchange_code_grant(
        &self,
        code: &str,
        pkce_verifier: &SecretString,
    ) -> DiscordResult<TokenSet> {
        let redirect = RedirectUrl::new(self.config.redirect_uri.clone())
            .map_err(|_| DiscordError::NotConfigured("valid redirect_uri"))?;
        let client = self
            .oauth_client()?
            .set_token_uri(self.token_url()?)
            .set_redirect_uri(redirect);
        let http = OAuthHttp {
            transport: self.transport.clone(),
            route: TOKEN_ROUTE,
        };
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                pkce_verifier.expose_secret().to_owned(),
            ))
            .request_async(&http)
            .await
            .map_err(oauth_error)?;
        Ok(token_set(&token))
    }

    pub(super) async fn refresh_token_grant(
        &self,
        refresh_token: &SecretString,
    ) -> DiscordResult<TokenSet> {
        let client = self.oauth_client()?.set_token_uri(self.token_url()?);
        let refresh_token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let http = OAuthHttp {
            transport: self.transport.clone(),
            route: TOKEN_ROUTE,
        };
        let token = client
            .exchange_refresh_token(&refresh_token)
            .request_async(&http)
            .await
            .map_err(oauth_error)?;
        Ok(token_set(&token))
    }

    pub(super) async fn revoke(&self, token: &SecretString) -> DiscordResult<()> {
        let secret = self
            .config
            .client_secret
            .as_ref()
            .ok_or(DiscordError::NotConfigured("client secret"))?;
        let form = serde_urlencoded::to_string([
            ("token", token.expose_secret()),
            ("token_type_hint", "access_token"),
        ])
        .map_err(|e| DiscordError::Decode(format!("revoke form: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            AUTHORIZATION,
            basic_auth(&self.config.application_id, secret)?,
        );
        let call = Call {
            method: Method::POST,
            route: REVOKE_ROUTE,
            url: self.url(REVOKE_ROUTE),
            major: None,
            auth: Auth::Client,
            headers,
            body: Some(form.into_bytes()),
        };
        let raw = self.transport.execute(&call).await?;
        if raw.status.is_success() {
            return Ok(());
        }
        let error: Option<StandardErrorResponse<BasicErrorResponseType>> =
            serde_json::from_slice(&raw.body).ok();
        Err(match error {
            Some(error) => oauth_error(RequestTokenError::ServerResponse(error)),
            None => DiscordError::Api {
                status: raw.status.as_u16(),
                code: 0,
                message: "token revocation failed".to_owned(),
            },
        })
    }
}

/// The `oauth2` crate's HTTP client: our transport, with its retries and stats. It owns a
/// (cheap) clone of the transport: a borrowed client makes rustc unable to prove the callers'
/// futures `Send` ("implementation of `AsyncHttpClient` is not general enough").
struct OAuthHttp {
    transport: Transport,
    route: &'static str,
}

impl<'c> AsyncHttpClient<'c> for OAuthHttp {
    type Error = DiscordError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, DiscordError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.transport.send_oauth(self.route, request))
    }
}

impl Transport {
    async fn send_oauth(
        &self,
        route: &'static str,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, DiscordError> {
        let (parts, body) = request.into_parts();
        let call = Call {
            method: parts.method,
            route,
            url: parts.uri.to_string(),
            major: None,
            auth: Auth::Client,
            headers: parts.headers,
            body: Some(body),
        };
        let raw = self.execute(&call).await?;
        let mut response = oauth2::HttpResponse::new(raw.body);
        *response.status_mut() = raw.status;
        *response.headers_mut() = raw.headers;
        Ok(response)
    }
}

fn token_set(token: &oauth2::basic::BasicTokenResponse) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(token.access_token().secret().to_owned()),
        refresh_token: token
            .refresh_token()
            .map(|t| SecretString::from(t.secret().to_owned())),
        expires_in: token
            .expires_in()
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .unwrap_or(DEFAULT_EXPIRES_IN),
        scope: token
            .scopes()
            .map(|scopes| {
                scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
    }
}

fn oauth_error(error: OAuthError) -> DiscordError {
    match error {
        RequestTokenError::ServerResponse(response) => match response.error() {
            BasicErrorResponseType::InvalidGrant => DiscordError::InvalidGrant,
            BasicErrorResponseType::InvalidClient => DiscordError::InvalidClient,
            other => oauth_api_error(other.as_ref(), response.error_description()),
        },
        other => request_error(other),
    }
}

/// HTTP Basic client authentication as RFC 6749 §2.3.1 (and the `oauth2` crate) does it.
fn basic_auth(client_id: &str, secret: &SecretString) -> DiscordResult<HeaderValue> {
    let encode =
        |value: &str| url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encode(client_id), encode(secret.expose_secret()));
    let mut value = HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    ))
    .map_err(|_| DiscordError::NotConfigured("valid client secret"))?;
    value.set_sensitive(true);
    Ok(value)
}

fn oauth_api_error(error: &str, description: Option<&String>) -> DiscordError {
    DiscordError::Api {
        status: 400,
        code: 0,
        message: match description {
            Some(description) => format!("{error}: {description}"),
            None => error.to_owned(),
        },
    }
}

/// Transport failures and undecodable answers. Never includes the body: it may hold tokens.
fn request_error<T: ErrorResponse>(error: RequestTokenError<DiscordError, T>) -> DiscordError {
    match error {
        RequestTokenError::Request(error) => error,
        RequestTokenError::Parse(error, _) => {
            DiscordError::Decode(format!("OAuth2 response, at `{}`", error.path()))
        }
        RequestTokenError::Other(message) => DiscordError::Decode(message),
        RequestTokenError::ServerResponse(_) => {
            DiscordError::Decode("unexpected OAuth2 error response".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_states_shaped_like_ours_are_well_formed() {
        let generated = CsrfToken::new_random_len(STATE_BYTES);
        assert!(is_well_formed_state(generated.secret()));
        assert_eq!(generated.secret().len(), STATE_CHARS);
        for bad in [
            "",
            "short",
            &"a".repeat(STATE_CHARS + 1),
            &"a".repeat(STATE_CHARS - 1),
            &format!("{}=", "a".repeat(STATE_CHARS - 1)),
            &format!("{}é", "a".repeat(STATE_CHARS - 2)),
            &"a".repeat(1 << 20),
        ] {
            assert!(!is_well_formed_state(bad), "{bad:.40}");
        }
    }
}
