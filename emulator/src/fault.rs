//! Scripted failures: the next `times` matching requests get a canned response instead of being
//! processed, to exercise a client's retry and error paths.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Any method when `None`; compared case-insensitively.
    #[serde(default)]
    pub method: Option<String>,
    /// Matched against the request path (without query), e.g. `/members/`.
    pub path_contains: String,
    pub status: u16,
    /// Discord error code for the body; without one the body is `{"message": ...}` only.
    #[serde(default)]
    pub code: Option<u64>,
    #[serde(default)]
    pub message: String,
    #[serde(default = "once")]
    pub times: u32,
}

impl Fault {
    /// `times` requests to paths containing `path_contains` answer `status`.
    pub fn new(path_contains: impl Into<String>, status: u16, times: u32) -> Self {
        Self {
            method: None,
            path_contains: path_contains.into(),
            status,
            code: None,
            message: String::new(),
            times,
        }
    }

    pub fn with_method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    pub fn with_code(mut self, code: u64, message: impl Into<String>) -> Self {
        self.code = Some(code);
        self.message = message.into();
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.times > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.contains(&self.path_contains)
    }
}

fn once() -> u32 {
    1
}

/// Takes one use of the first matching fault, dropping faults that are used up.
pub(crate) fn take_matching(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<Fault> {
    let index = faults.iter().position(|f| f.matches(method, path))?;
    let fault = &mut faults[index];
    fault.times -= 1;
    let taken = fault.clone();
    if fault.times == 0 {
        faults.remove(index);
    }
    Some(taken)
}
