//! Which arguments of a command are secrets: passwords and user rules never reach the slow log,
//! where each shows as `(redacted)`, as Redis's `redactClientCommandArgument` does. A command
//! names its function in the table ([`super::redacts`]); the executor asks it only when it
//! records a slow log entry.

use super::is;

/// AUTH [username] password: every argument.
pub fn auth(args: &[&[u8]]) -> Vec<usize> {
    (1..args.len()).collect()
}

/// HELLO protover [AUTH username password] [SETNAME name]: AUTH's two values, wherever they are.
pub fn hello(args: &[&[u8]]) -> Vec<usize> {
    let mut secrets = Vec::new();
    let mut index = 2;
    while index < args.len() {
        let more = args.len() - 1 - index;
        if is(args[index], "AUTH") && more >= 2 {
            secrets.extend([index + 1, index + 2]);
            index += 2;
        } else if is(args[index], "SETNAME") && more >= 1 {
            index += 1;
        }
        index += 1;
    }
    secrets
}

/// ACL SETUSER username rule...: the name and every rule (`>password`, `#hash`, patterns).
pub fn acl(args: &[&[u8]]) -> Vec<usize> {
    if args.len() >= 3 && is(args[1], "SETUSER") {
        (2..args.len()).collect()
    } else {
        Vec::new()
    }
}

/// Parameters whose values are secrets (Redis's `SENSITIVE_CONFIG`).
const SENSITIVE_PARAMETERS: &[&str] = &["requirepass", "masterauth", "masteruser"];

/// CONFIG SET parameter value ...: the value of each sensitive parameter.
pub fn config(args: &[&[u8]]) -> Vec<usize> {
    if args.len() < 4 || !is(args[1], "SET") {
        return Vec::new();
    }
    (2..args.len() - 1)
        .step_by(2)
        .filter(|&index| {
            SENSITIVE_PARAMETERS
                .iter()
                .any(|name| is(args[index], name))
        })
        .map(|index| index + 1)
        .collect()
}

/// MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH password] [AUTH2 username password]
/// [KEYS key...]: AUTH's and AUTH2's values.
pub fn migrate(args: &[&[u8]]) -> Vec<usize> {
    let mut secrets = Vec::new();
    let mut index = 6;
    while index < args.len() {
        let more = args.len() - 1 - index;
        if is(args[index], "KEYS") {
            break;
        } else if is(args[index], "AUTH") && more >= 1 {
            secrets.push(index + 1);
            index += 1;
        } else if is(args[index], "AUTH2") && more >= 2 {
            secrets.extend([index + 1, index + 2]);
            index += 2;
        }
        index += 1;
    }
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<&[u8]> {
        line.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn secrets_are_found_where_redis_redacts() {
        assert_eq!(auth(&args("auth pw")), [1]);
        assert_eq!(auth(&args("auth user pw")), [1, 2]);
        assert_eq!(hello(&args("hello 3 setname auth auth u p")), [5, 6]);
        assert_eq!(hello(&args("hello 3 auth u")), Vec::<usize>::new());
        assert_eq!(acl(&args("acl setuser u on >pw")), [2, 3, 4]);
        assert_eq!(acl(&args("acl getuser u")), Vec::<usize>::new());
        assert_eq!(
            config(&args("config set maxmemory 1 REQUIREPASS pw masterauth m")),
            [5, 7]
        );
        assert_eq!(config(&args("config get requirepass")), Vec::<usize>::new());
        assert_eq!(migrate(&args("migrate h 1 k 0 10 COPY AUTH pw")), [8]);
        assert_eq!(
            migrate(&args("migrate h 1 k 0 10 AUTH2 u p KEYS a")),
            [7, 8]
        );
        // A password spelled KEYS is a password, not the keyword.
        assert_eq!(migrate(&args("migrate h 1  0 10 AUTH KEYS KEYS a")), [7]);
    }
}
