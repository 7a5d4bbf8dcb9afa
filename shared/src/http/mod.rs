//! One axum Router: admin API (`/api/v1/…`) and SSO (`/discord/sso/…`).
