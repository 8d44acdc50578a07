//! Usage controls as token create and update take them (the admin API and
//! the CLI alike): parsed and checked before the token is locked, then set
//! on the locked record, where the rules that involve the record itself
//! (a `required` binding needs a device) are checked.

use chrono::{DateTime, Utc};
use tessera_core::{
    api_token::ApiToken,
    crypto::KeyedHasher,
    token_controls::{
        parse_ip_list, parse_period, validate_device_id, validate_ratelimits, Credits,
        DeviceBinding, IpNet, RateLimitSpec, Refill,
    },
    DomainError,
};

/// Controls to set; `None` leaves one as it is (at create: unset).
#[derive(Debug, Default)]
pub struct ControlsInput {
    /// Replaces the allow list (empty: any address).
    pub ip_allow: Option<Vec<String>>,
    /// Replaces the deny list.
    pub ip_deny: Option<Vec<String>>,
    /// `none`, `first_use` or `required`.
    pub device_binding: Option<String>,
    /// Binds this device now (needed with `required`). Kept only as a keyed hash.
    pub device_id: Option<String>,
    /// `Some(None)` removes the credits (unlimited).
    pub credits: Option<Option<CreditsInput>>,
    /// Replaces the named rate limits.
    pub ratelimits: Option<Vec<RateLimitInput>>,
}

#[derive(Debug, Clone)]
pub struct CreditsInput {
    pub remaining: i64,
    /// The amount the balance is set back to, and every how long (`1d`).
    pub refill: Option<(i64, String)>,
}

#[derive(Debug, Clone)]
pub struct RateLimitInput {
    pub name: String,
    pub limit: i64,
    /// `30s`, `1m`, `1h`, `1d` …
    pub period: String,
    pub burst: Option<i64>,
}

impl ControlsInput {
    /// Whether the input sets nothing.
    pub fn is_empty(&self) -> bool {
        self.ip_allow.is_none()
            && self.ip_deny.is_none()
            && self.device_binding.is_none()
            && self.device_id.is_none()
            && self.credits.is_none()
            && self.ratelimits.is_none()
    }

    /// Parses every given control (422 naming the field on a bad one); the
    /// device id becomes its keyed hash here and is not kept.
    pub(crate) fn validate(
        self,
        device_hasher: &KeyedHasher,
        now: DateTime<Utc>,
    ) -> Result<ControlChange, DomainError> {
        let ip_allow = self
            .ip_allow
            .map(|l| parse_ip_list("ip_allow", &l))
            .transpose()?;
        let ip_deny = self
            .ip_deny
            .map(|l| parse_ip_list("ip_deny", &l))
            .transpose()?;
        let device_binding = self
            .device_binding
            .map(|b| {
                DeviceBinding::parse(&b).ok_or_else(|| {
                    DomainError::invalid("device_binding", "must be none, first_use or required")
                })
            })
            .transpose()?;
        let device_hash = match self.device_id {
            Some(id) => {
                validate_device_id(&id)?;
                Some(device_hasher.hash_hex(id.as_bytes()))
            }
            None => None,
        };
        let credits = match self.credits {
            Some(Some(c)) => Some(Some(c.validate(now)?)),
            Some(None) => Some(None),
            None => None,
        };
        let ratelimits = self
            .ratelimits
            .map(|list| {
                let specs = list
                    .into_iter()
                    .map(RateLimitInput::validate)
                    .collect::<Result<Vec<_>, _>>()?;
                validate_ratelimits(specs)
            })
            .transpose()?;
        Ok(ControlChange {
            ip_allow,
            ip_deny,
            device_binding,
            device_hash,
            credits,
            ratelimits,
        })
    }
}

impl CreditsInput {
    fn validate(self, now: DateTime<Utc>) -> Result<Credits, DomainError> {
        let refill = self
            .refill
            .map(|(amount, interval)| {
                Ok::<_, DomainError>(Refill {
                    amount,
                    interval: parse_period("credits", &interval)?,
                })
            })
            .transpose()?;
        Credits::new(self.remaining, refill, now)
    }
}

impl RateLimitInput {
    fn validate(self) -> Result<RateLimitSpec, DomainError> {
        Ok(RateLimitSpec {
            period: parse_period("ratelimits", &self.period)?,
            name: self.name,
            limit: self.limit,
            burst: self.burst,
        })
    }
}

/// Validated controls, ready to set on a (locked) token.
#[derive(Debug, Default)]
pub(crate) struct ControlChange {
    ip_allow: Option<Vec<IpNet>>,
    ip_deny: Option<Vec<IpNet>>,
    device_binding: Option<DeviceBinding>,
    device_hash: Option<String>,
    credits: Option<Option<Credits>>,
    ratelimits: Option<Vec<RateLimitSpec>>,
}

impl ControlChange {
    /// Sets the given controls on `t` and names them in `changed`; then
    /// checks the binding rules on the result: a device needs a binding
    /// mode, `required` needs a device, and `none` forgets the device.
    pub(crate) fn apply(
        self,
        t: &mut ApiToken,
        changed: &mut Vec<&'static str>,
    ) -> Result<(), DomainError> {
        let binding_touched = self.device_binding.is_some() || self.device_hash.is_some();
        let c = &mut t.controls;
        set(&mut c.ip_allow, self.ip_allow, "ip_allow", changed);
        set(&mut c.ip_deny, self.ip_deny, "ip_deny", changed);
        set(
            &mut c.device_binding,
            self.device_binding,
            "device_binding",
            changed,
        );
        set(&mut c.ratelimits, self.ratelimits, "ratelimits", changed);
        set(&mut t.credits, self.credits, "credits", changed);
        if let Some(hash) = self.device_hash {
            if t.controls.device_binding == DeviceBinding::None {
                return Err(DomainError::invalid(
                    "device_id",
                    "needs device_binding first_use or required",
                ));
            }
            t.bound_device = Some(hash);
            changed.push("device_id");
        }
        if binding_touched {
            match t.controls.device_binding {
                DeviceBinding::None => t.bound_device = None,
                DeviceBinding::Required if t.bound_device.is_none() => {
                    return Err(DomainError::invalid(
                        "device_id",
                        "is required with device_binding required",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Sets `field` when a value is given, and names it in `changed`.
pub(crate) fn set<T>(
    field: &mut T,
    value: Option<T>,
    name: &'static str,
    changed: &mut Vec<&'static str>,
) {
    if let Some(v) = value {
        *field = v;
        changed.push(name);
    }
}
