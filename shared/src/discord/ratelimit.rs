// INTERFACE STUB — to be implemented.
/// Shared per bot token: one instance serves every `DiscordClient` using that token.
#[derive(Debug, Default)]
pub struct RateLimiter {}

impl RateLimiter {
    /// Global limit in requests per second (Discord: 50 per bot token).
    pub fn new(global_per_second: u32) -> Self {
        let _ = global_per_second;
        Self {}
    }
}
