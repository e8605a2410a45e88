//! Argument parsing for RECOMMEND:
//! `RECOMMEND model user k CANDIDATES n id [id ...]` or `RECOMMEND model user k FROM key` (a set or sorted set
//! holding the candidate ids).

use ember_resp::parse_i64;

/// Most candidates one RECOMMEND may score (64 Ki): bounds the rows it gathers and the batch it builds.
pub const CANDIDATES_MAX: usize = 65_536;

/// Where the candidates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Candidates {
    /// Listed in the command.
    Ids(Vec<Vec<u8>>),
    /// The members of a set or sorted set key.
    Key(Vec<u8>),
}

/// A parsed RECOMMEND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recommend {
    /// The dense model's name.
    pub model: Vec<u8>,
    /// The user id (rows `emb:{f}:{user}` and `dense:{user}`).
    pub user: Vec<u8>,
    /// How many ids to return.
    pub k: usize,
    /// The candidates.
    pub candidates: Candidates,
}

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";

/// Parses RECOMMEND's arguments (command name first).
///
/// # Errors
/// Redis-style messages: arity, syntax, integers out of range, and the candidate bound.
pub fn recommend(args: &[&[u8]]) -> Result<Recommend, String> {
    if args.len() < 6 {
        return Err("ERR wrong number of arguments for 'recommend' command".into());
    }
    let k = parse_i64(args[3])
        .filter(|&k| k > 0)
        .ok_or(NOT_AN_INTEGER)? as usize;
    let candidates = if args[4].eq_ignore_ascii_case(b"FROM") {
        if args.len() != 6 {
            return Err("ERR syntax error".into());
        }
        Candidates::Key(args[5].to_vec())
    } else if args[4].eq_ignore_ascii_case(b"CANDIDATES") {
        let n = parse_i64(args[5])
            .filter(|&n| n > 0)
            .ok_or(NOT_AN_INTEGER)? as usize;
        if n > CANDIDATES_MAX {
            return Err(format!(
                "ERR at most {CANDIDATES_MAX} candidates per RECOMMEND"
            ));
        }
        if args.len() != 6 + n {
            return Err("ERR number of candidate ids does not match CANDIDATES count".into());
        }
        Candidates::Ids(args[6..].iter().map(|id| id.to_vec()).collect())
    } else {
        return Err("ERR syntax error".into());
    };
    Ok(Recommend {
        model: args[1].to_vec(),
        user: args[2].to_vec(),
        k,
        candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Result<Recommend, String> {
        let owned: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        recommend(&args)
    }

    #[test]
    fn cases() {
        let ok = run("RECOMMEND dlrm_dense 7 2 CANDIDATES 3 1 2 3").unwrap();
        assert_eq!(
            (ok.model.as_slice(), ok.user.as_slice(), ok.k),
            (&b"dlrm_dense"[..], &b"7"[..], 2)
        );
        assert_eq!(
            ok.candidates,
            Candidates::Ids(vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()])
        );
        assert_eq!(
            run("recommend m u 5 from items").unwrap().candidates,
            Candidates::Key(b"items".to_vec())
        );
        let errors = [
            (
                "RECOMMEND m u 5 CANDIDATES",
                "ERR wrong number of arguments for 'recommend' command",
            ),
            ("RECOMMEND m u x CANDIDATES 1 a", NOT_AN_INTEGER),
            ("RECOMMEND m u 0 CANDIDATES 1 a", NOT_AN_INTEGER),
            ("RECOMMEND m u 1 CANDIDATES -1 a", NOT_AN_INTEGER),
            (
                "RECOMMEND m u 1 CANDIDATES 2 a",
                "ERR number of candidate ids does not match CANDIDATES count",
            ),
            (
                "RECOMMEND m u 1 CANDIDATES 99999 a",
                "ERR at most 65536 candidates per RECOMMEND",
            ),
            ("RECOMMEND m u 1 FROM a b", "ERR syntax error"),
            ("RECOMMEND m u 1 AMONG 1 a", "ERR syntax error"),
        ];
        for (line, want) in errors {
            assert_eq!(run(line).unwrap_err(), want, "{line}");
        }
    }
}
