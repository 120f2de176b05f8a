//! `Env`: a snapshot of the environment variables the granting side named.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::sync::Arc;

use cap_std::AmbientAuthority;

use crate::capability::Capability;
use crate::grant::grant_by_clone;
use crate::revoke::Gate;

/// Reading an environment snapshot failed.
///
/// # Examples
///
/// ```
/// use compartment::caps::{Env, EnvError};
/// let env = Env::from_vars([("LANG", "C")])?;
/// assert!(matches!(env.get("HOME"), Err(EnvError::NotGranted { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// The name was not among those the granting side allowed. (A named
    /// variable that is unset is `Ok(None)`, not this.)
    #[error("environment variable `{name}` is not granted")]
    NotGranted {
        /// The name asked for.
        name: String,
    },
    /// A name is empty or contains `=` or a NUL byte.
    #[error("`{name}` is not a valid environment variable name")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The value is not valid UTF-8 (use [`Env::get_os`]).
    #[error("environment variable `{name}` is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        name: String,
    },
    /// The capability was revoked.
    #[error("environment snapshot revoked")]
    Revoked,
}

/// An environment capability: the values, at grant time, of the variables the
/// granting side named — and nothing about any other variable.
///
/// Asking for a variable that was not named is an error
/// ([`EnvError::NotGranted`]), so a component cannot even learn whether it
/// exists. Changes to the process environment after the snapshot are not
/// seen.
///
/// # Examples
///
/// ```
/// use compartment::caps::{Env, EnvError};
///
/// let env = Env::from_vars([("LOG_LEVEL", "debug")])?;
/// assert_eq!(env.get("LOG_LEVEL")?, Some("debug"));
/// assert!(matches!(env.get("AWS_SECRET_ACCESS_KEY"), Err(EnvError::NotGranted { .. })));
/// # Ok::<(), EnvError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Env {
    pub(crate) vars: Arc<BTreeMap<String, Option<OsString>>>,
    pub(crate) gate: Gate,
}

fn validate(name: &str) -> Result<(), EnvError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(EnvError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

impl Env {
    /// Snapshots the named variables of the process environment.
    ///
    /// # Ambient Authority
    ///
    /// Reads the process environment: call it on the granting side.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::Env;
    ///
    /// // Only the named variables are in the snapshot, set or not.
    /// let env = Env::snapshot(["PATH", "COMPARTMENT_UNSET_EXAMPLE"], compartment::ambient_authority())?;
    /// assert_eq!(env.names().count(), 2);
    /// assert_eq!(env.get("COMPARTMENT_UNSET_EXAMPLE")?, None);
    /// assert!(env.get("HOME").is_err()); // not granted
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EnvError::InvalidName`] for an empty name or one containing `=` or
    /// NUL.
    pub fn snapshot<I, S>(names: I, ambient_authority: AmbientAuthority) -> Result<Self, EnvError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let _ = ambient_authority;
        let mut vars = BTreeMap::new();
        for name in names {
            let name = name.as_ref();
            validate(name)?;
            #[allow(
                clippy::disallowed_methods,
                reason = "this is the ambient-authority constructor of the environment capability"
            )]
            let value = std::env::var_os(name);
            vars.insert(name.to_owned(), value);
        }
        Ok(Self {
            vars: Arc::new(vars),
            gate: Gate::default(),
        })
    }

    /// A snapshot made of the given pairs, without reading the process
    /// environment; every name given is granted.
    ///
    /// # Examples
    ///
    /// ```
    /// use compartment::caps::Env;
    ///
    /// let env = Env::from_vars([("LANG", "C.UTF-8")])?;
    /// assert_eq!(env.get("LANG")?, Some("C.UTF-8"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EnvError::InvalidName`], as for [`snapshot`](Self::snapshot).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, EnvError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<OsString>,
    {
        let mut map = BTreeMap::new();
        for (name, value) in vars {
            let name = name.as_ref();
            validate(name)?;
            map.insert(name.to_owned(), Some(value.into()));
        }
        Ok(Self {
            vars: Arc::new(map),
            gate: Gate::default(),
        })
    }

    fn lookup(&self, name: &str) -> Result<Option<&OsString>, EnvError> {
        self.gate.check().map_err(|_| EnvError::Revoked)?;
        match self.vars.get(name) {
            Some(value) => Ok(value.as_ref()),
            None => Err(EnvError::NotGranted {
                name: name.to_owned(),
            }),
        }
    }

    /// The value of a granted variable as UTF-8; `None` if it was unset.
    ///
    /// # Examples
    ///
    /// ```
    /// let env = compartment::caps::Env::from_vars([("LANG", "C.UTF-8")])?;
    /// assert_eq!(env.get("LANG")?, Some("C.UTF-8"));
    /// assert!(env.get("PATH").is_err()); // not granted: an error, not None
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EnvError::NotGranted`], [`EnvError::NotUnicode`],
    /// [`EnvError::Revoked`].
    pub fn get(&self, name: &str) -> Result<Option<&str>, EnvError> {
        match self.lookup(name)? {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map(Some)
                .ok_or_else(|| EnvError::NotUnicode {
                    name: name.to_owned(),
                }),
        }
    }

    /// The raw value of a granted variable; `None` if it was unset.
    ///
    /// # Examples
    ///
    /// ```
    /// let env = compartment::caps::Env::from_vars([("LANG", "C.UTF-8")])?;
    /// assert_eq!(env.get_os("LANG")?, Some(std::ffi::OsStr::new("C.UTF-8")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EnvError::NotGranted`], [`EnvError::Revoked`].
    pub fn get_os(&self, name: &str) -> Result<Option<&OsStr>, EnvError> {
        Ok(self.lookup(name)?.map(OsString::as_os_str))
    }

    /// The granted names, set or not, in sorted order.
    ///
    /// # Examples
    ///
    /// ```
    /// let env = compartment::caps::Env::from_vars([("B", "2"), ("A", "1")])?;
    /// assert_eq!(env.names().collect::<Vec<_>>(), ["A", "B"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// The granted variables that were set, in name order.
    ///
    /// # Examples
    ///
    /// ```
    /// let env = compartment::caps::Env::from_vars([("A", "1")])?;
    /// let vars: Vec<_> = env.vars()?.collect();
    /// assert_eq!(vars, [("A", std::ffi::OsStr::new("1"))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`EnvError::Revoked`].
    pub fn vars(&self) -> Result<impl Iterator<Item = (&str, &OsStr)>, EnvError> {
        self.gate.check().map_err(|_| EnvError::Revoked)?;
        Ok(self
            .vars
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.as_deref()?))))
    }
}

grant_by_clone!(Env, |env| Capability::Env {
    names: env.vars.keys().cloned().collect(),
});
