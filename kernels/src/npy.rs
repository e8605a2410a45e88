//! Reads numpy `.npy` files (format versions 1 to 3): the models' embedding tables and test vectors are written
//! by numpy, so Rust and Python read the same bytes. Little-endian f32, f64, i32 and i64 in C order only.

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::tensor::{DataType, Tensor};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Longest header we accept; numpy pads headers to 64 bytes and they stay well under this.
const HEADER_LEN_MAX: usize = 64 * 1024;

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Io, format!("malformed .npy: {what}"))
}

/// Reads a `.npy` file into a tensor.
///
/// # Errors
/// [`ErrorKind::Io`] when the file cannot be read or is not a supported `.npy`; [`ErrorKind::InvalidTensor`] when
/// its shape passes the tensor bounds.
pub fn read(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    parse(&bytes).map_err(|e| Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Parses `.npy` bytes into a tensor.
///
/// # Errors
/// As [`read`].
pub fn parse(bytes: &[u8]) -> Result<Tensor> {
    if bytes.len() < MAGIC.len() + 2 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(malformed("no \\x93NUMPY magic"));
    }
    let major = bytes[MAGIC.len()];
    let rest = &bytes[MAGIC.len() + 2..];
    let (header_len, rest) = match major {
        1 if rest.len() >= 2 => (
            usize::from(u16::from_le_bytes([rest[0], rest[1]])),
            &rest[2..],
        ),
        2 | 3 if rest.len() >= 4 => (
            u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize,
            &rest[4..],
        ),
        _ => {
            return Err(malformed(format!(
                "unsupported version {major} or truncated header"
            )))
        }
    };
    if header_len > HEADER_LEN_MAX || header_len > rest.len() {
        return Err(malformed(format!(
            "header length {header_len} out of range"
        )));
    }
    let header =
        std::str::from_utf8(&rest[..header_len]).map_err(|_| malformed("header is not UTF-8"))?;
    let descr = dict_value(header, "descr")?.trim_matches(|c| c == '\'' || c == '"');
    let dtype = match descr {
        "<f4" => DataType::Float,
        "<f8" => DataType::Double,
        "<i4" => DataType::Int32,
        "<i8" => DataType::Int64,
        other => return Err(malformed(format!("unsupported dtype {other}"))),
    };
    if dict_value(header, "fortran_order")? != "False" {
        return Err(malformed("Fortran order is not supported"));
    }
    let shape_text = dict_value(header, "shape")?;
    let shape = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| malformed(format!("bad shape {shape_text}")))
        })
        .collect::<Result<Vec<usize>>>()?;
    Tensor::from_le_bytes(dtype, shape, &rest[header_len..])
}

/// The text of one value in the header's Python dict literal (`{'descr': '<f4', 'shape': (2, 3), }`).
fn dict_value<'h>(header: &'h str, key: &str) -> Result<&'h str> {
    let quoted = format!("'{key}':");
    let start = header
        .find(&quoted)
        .ok_or_else(|| malformed(format!("header has no '{key}'")))?
        + quoted.len();
    let value = header[start..].trim_start();
    let end = if value.starts_with('(') {
        value.find(')').map(|i| i + 1)
    } else {
        value.find([',', '}'])
    }
    .ok_or_else(|| malformed(format!("header value for '{key}' is not terminated")))?;
    Ok(value[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorData;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn parses_what_numpy_writes() {
        let data: Vec<u8> = [1i64, -2, 3, 4, 5, 6]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let bytes = npy(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }          \n",
            &data,
        );
        let tensor = parse(&bytes).unwrap();
        assert_eq!(tensor.shape(), &[2, 3]);
        assert_eq!(tensor.data(), &TensorData::Int64(vec![1, -2, 3, 4, 5, 6]));
        let one_dim = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n",
            &1.5f32.to_le_bytes(),
        );
        assert_eq!(parse(&one_dim).unwrap().shape(), &[1]);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let cases = [
            ("no magic", b"NUMPY".to_vec()),
            (
                "big endian",
                npy(
                    "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                    &[0; 4],
                ),
            ),
            (
                "fortran",
                npy(
                    "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
                    &[0; 4],
                ),
            ),
            (
                "short data",
                npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                    &[0; 4],
                ),
            ),
            (
                "bad shape",
                npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }",
                    &[0; 4],
                ),
            ),
        ];
        for (name, bytes) in cases {
            assert!(parse(&bytes).is_err(), "{name}");
        }
    }
}
