//! A hand-written reader for the common shape of one record of an update's `Files` array, tried
//! before serde: a full update is a million of these, and serde's generic path (every key
//! matched as a string, every value through a visitor) was most of the time it took to parse
//! one (`bench/scale.sh`, `parse_cpu_s`).
//!
//! It only ever *accepts*: what it takes is exactly what serde would make of the same bytes,
//! and anything it is not sure about (an escape, an unknown or repeated key, a number serde
//! reads otherwise, a record cut off by the end of the chunk, anything that is not an object)
//! makes it return `None`, and serde parses the record as before, with its refusals and error
//! messages. Proptests below hold it to that against serde.

use smol_str::SmolStr;

use super::{needs_escape, FileInfo, FileMode};

/// The record at the start of `bytes` and how many bytes it took (up to its closing `}`), when
/// it has the common shape; `None` to leave it to serde.
pub(super) fn read(bytes: &[u8]) -> Option<(FileInfo, usize)> {
    let mut r = Reader { bytes, at: 0 };
    let mut f = FileInfo {
        full_name: SmolStr::default(),
        dir: false,
        last_modified: 0,
        last_info_updated: 0,
        size_in_bytes: 0,
        file_mode: FileMode(0),
        owner_node: SmolStr::default(),
        deletion: false,
    };
    r.ws();
    r.byte(b'{')?;
    r.ws();
    if r.peek()? == b'}' {
        return Some((f, r.at + 1));
    }
    // serde refuses a repeated field (`Basename` is not one: serde ignores it, every time).
    let mut seen = 0u8;
    // The field expected next, in the order Go's nodes and ours write them: its key is
    // recognised without scanning for the end of the string.
    let mut next = 0;
    loop {
        let field = match KEYS.get(next) {
            Some(&(quoted, field)) if r.bytes[r.at..].starts_with(quoted) => {
                r.at += quoted.len();
                field
            }
            _ => match r.string()? {
                b"FullName" => 0,
                b"Dir" => 1,
                b"LastModified" => 2,
                b"LastInfoUpdated" => 3,
                b"SizeInBytes" => 4,
                b"FileMode" => 5,
                b"OwnerNode" => 6,
                b"Deletion" => 7,
                b"Basename" => 8,
                _ => return None,
            },
        };
        next = KEYS.iter().position(|&(_, f)| f == field).map_or(KEYS.len(), |i| i + 1);
        r.ws();
        r.byte(b':')?;
        r.ws();
        if field < 8 {
            if seen & (1 << field) != 0 {
                return None;
            }
            seen |= 1 << field;
        }
        match field {
            0 => f.full_name = SmolStr::new(std::str::from_utf8(r.string()?).ok()?),
            1 => f.dir = r.bool()?,
            2 => f.last_modified = r.int()?,
            3 => f.last_info_updated = r.int()?,
            4 => f.size_in_bytes = u64::try_from(r.int()?).ok()?,
            5 => f.file_mode = FileMode(u32::try_from(r.int()?).ok()?),
            6 => f.owner_node = SmolStr::new(std::str::from_utf8(r.string()?).ok()?),
            7 => f.deletion = r.bool()?,
            _ => {
                std::str::from_utf8(r.string()?).ok()?;
            }
        }
        r.ws();
        match r.peek()? {
            b',' => {
                r.at += 1;
                r.ws();
            }
            b'}' => return Some((f, r.at + 1)),
            _ => return None,
        }
    }
}

/// The keys in the order the Go struct declares them (and serde writes ours), quoted, with the
/// number `read` gives each field.
const KEYS: [(&[u8], u8); 9] = [
    (b"\"FullName\"", 0),
    (b"\"Basename\"", 8),
    (b"\"Dir\"", 1),
    (b"\"LastModified\"", 2),
    (b"\"LastInfoUpdated\"", 3),
    (b"\"SizeInBytes\"", 4),
    (b"\"FileMode\"", 5),
    (b"\"OwnerNode\"", 6),
    (b"\"Deletion\"", 7),
];

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// JSON's whitespace, as serde_json skips it.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.at += 1;
        }
    }

    fn byte(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// The contents of a string without escapes or control characters (not yet checked to be
    /// UTF-8).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let rest = &self.bytes[self.at..];
        let end = memchr::memchr(b'"', rest)?;
        // Before the first quote: no quote, so any byte JSON escapes is an escape or a control
        // character.
        if needs_escape(&rest[..end]) {
            return None;
        }
        self.at += end + 1;
        Some(&rest[..end])
    }

    fn bool(&mut self) -> Option<bool> {
        let rest = &self.bytes[self.at..];
        let (value, len) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.at += len;
        self.delimited().then_some(value)
    }

    /// An integer as serde_json reads one into an integer field: an optional `-`, then `0` or
    /// digits without a leading zero. Up to 18 digits (so that it cannot overflow), and not `-0`
    /// (serde_json reads that as a float, which an integer field refuses).
    fn int(&mut self) -> Option<i64> {
        let negative = self.peek()? == b'-';
        if negative {
            self.at += 1;
        }
        let rest = &self.bytes[self.at..];
        let (mut value, mut digits) = (0i64, 0);
        while let Some(d) = rest.get(digits).filter(|d| d.is_ascii_digit()) {
            if digits == 18 {
                return None;
            }
            value = value * 10 + i64::from(d - b'0');
            digits += 1;
        }
        if digits == 0 || (rest[0] == b'0' && (digits > 1 || negative)) {
            return None;
        }
        self.at += digits;
        // `1.5`, `1e3` are floats to serde_json; `1x` is an error.
        self.delimited().then_some(if negative { -value } else { value })
    }

    /// Whether a value ends here (whitespace, `,` or `}` follows), rather than running on.
    fn delimited(&self) -> bool {
        matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r' | b',' | b'}'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What serde makes of the record at the start of `bytes`: the record and its length.
    fn serde(bytes: &[u8]) -> Result<(FileInfo, usize), serde_json::Error> {
        let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<FileInfo>();
        match stream.next() {
            Some(r) => r.map(|f| (f, stream.byte_offset())),
            None => Err(serde::de::Error::custom("no value")),
        }
    }

    /// The records our nodes and the original's send are read here, not left to serde.
    #[test]
    fn reads_the_common_shape() {
        let go = br#"{"FullName":"somedir/a.txt","Basename":"a.txt","Dir":false,"LastModified":1700000000,"LastInfoUpdated":1700000001,"SizeInBytes":12,"FileMode":420,"OwnerNode":"node-a","Deletion":false},"#;
        let (f, len) = read(go).expect("read here");
        assert_eq!(len, go.len() - 1);
        assert_eq!((f.clone(), len), serde(go).unwrap());
        assert_eq!(f.full_name, "somedir/a.txt");
        assert_eq!((f.last_modified, f.last_info_updated, f.size_in_bytes), (1_700_000_000, 1_700_000_001, 12));
        let dir = br#" { "FullName" : "d" , "Dir" : true , "FileMode" : 2147484141 , "Deletion" : true } "#;
        assert_eq!(read(dir).expect("read here"), serde(dir).unwrap());
        assert_eq!(read(b"{}").expect("read here"), serde(b"{}").unwrap());
    }

    /// What it leaves to serde: serde refuses these, or reads them differently from the plain
    /// shape, or they need what only serde does (escapes, unknown fields).
    #[test]
    fn leaves_the_unusual_to_serde() {
        let unusual: &[&[u8]] = &[
            br#"{"FullName":"a\"b"}"#,
            br#"{"FullName":"a\u0062"}"#,
            br#"{"Full\u004eame":"a"}"#,
            br#"{"FullName":"a","FullName":"b"}"#,
            br#"{"FullName":"a","Extra":1}"#,
            br#"{"LastModified":-0}"#,
            br#"{"LastModified":01}"#,
            br#"{"LastModified":1.5}"#,
            br#"{"LastModified":1e3}"#,
            br#"{"LastModified":1234567890123456789}"#,
            br#"{"SizeInBytes":-1}"#,
            br#"{"FileMode":4294967296}"#,
            br#"{"Dir":null}"#,
            br#"{"Dir":"true"}"#,
            br#"{"Dir":truex}"#,
            b"{\"FullName\":\"a\tb\"}",
            b"{\"FullName\":\"\xff\"}",
            br#"{"FullName":"a",}"#,
            br#"{"FullName":"a" "Dir":true}"#,
            br#"{"FullName":"a""#,
            br#"["a"]"#,
            br#"null"#,
            b"",
        ];
        for bytes in unusual {
            assert_eq!(read(bytes), None, "{}", String::from_utf8_lossy(bytes));
        }
    }

    /// A value for a field: mostly of its type (some at the edges of its range, some in forms
    /// serde reads otherwise or refuses), sometimes anything.
    fn value_for(key: &str) -> BoxedStrategy<String> {
        let any_value = prop_oneof![
            "\"[a-z/ü\\\\\"\t\u{1}.]{0,12}\"",
            prop::sample::select(vec!["null", "[]", "{}", "[1,{\"a\":\"}\"}]", "tru", "1x", "-", "\"1\""])
                .prop_map(String::from),
        ];
        let number = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<u32>().prop_map(|n| n.to_string()),
            (-1_000i64..1_000).prop_map(|n| n.to_string()),
            prop::sample::select(vec![
                "-0",
                "0",
                "00",
                "01",
                "-01",
                "1.0",
                "1e2",
                "-1E2",
                "99999999999999999",
                "999999999999999999",
                "-999999999999999999",
                "9999999999999999999",
                "4294967295",
                "4294967296",
            ])
            .prop_map(String::from),
        ];
        let typed = match key {
            "Dir" | "Deletion" => any::<bool>().prop_map(|b| b.to_string()).boxed(),
            "FullName" | "Basename" | "OwnerNode" => "\"[a-z/.ü -]{0,30}\"".boxed(),
            _ => number.boxed(),
        };
        prop_oneof![6 => typed, 1 => any_value].boxed()
    }

    fn ws() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", "", "", " ", "\n\t", "\r "]).prop_map(String::from)
    }

    const FIELDS: [&str; 9] = [
        "FullName",
        "Basename",
        "Dir",
        "LastModified",
        "LastInfoUpdated",
        "SizeInBytes",
        "FileMode",
        "OwnerNode",
        "Deletion",
    ];

    /// A record of some of the fields in some order, sometimes with a repeated, unknown or
    /// escaped key, extra commas, or cut off as a chunk of the body would cut it.
    fn record() -> impl Strategy<Value = String> {
        let keys = prop_oneof![
            4 => Just(FIELDS.to_vec()).prop_shuffle().prop_flat_map(|k| (0..=k.len()).prop_map(move |n| k[..n].to_vec())),
            1 => prop::collection::vec(prop::sample::select(FIELDS.to_vec()), 0..4),
            1 => Just(vec!["FullName", "Extra", "Full\\u004eame"]).prop_shuffle(),
        ];
        keys.prop_flat_map(|keys| {
            let members: Vec<_> = keys.iter().map(|k| (ws(), Just(k.to_string()), ws(), value_for(k), ws())).collect();
            (members, ws(), prop::sample::select(vec!["", "", "", "", ","]), 0usize..6, ".{0,3}")
        })
        .prop_map(|(members, pad, trailing, cut, after)| {
            let body: Vec<String> = members.iter().map(|(a, k, b, v, c)| format!("{a}\"{k}\"{b}:{v}{c}")).collect();
            let s = format!("{pad}{{{}{trailing}}}{after}", body.join(","));
            // Cut off, once in a few.
            let mut end = if cut == 0 { s.len() / 2 } else { s.len() };
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_string()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever it reads, serde reads the same way, to the same byte; whatever serde
        /// refuses, it leaves to serde.
        #[test]
        fn agrees_with_serde(text in record()) {
            let bytes = text.as_bytes();
            if let Some(mine) = read(bytes) {
                prop_assert_eq!(Some(mine), serde(bytes).ok(), "{}", text);
            }
        }

        /// Records as our nodes write them, whatever their values, are all read here.
        #[test]
        fn reads_every_plain_record(
            path in "[a-z0-9._ -]{1,20}(/[a-z0-9._ ü-]{1,20}){0,4}",
            dir: bool, modified: i64, info in -(1i64 << 40)..(1i64 << 40), size in 0u64..(1 << 59), mode: u32,
        ) {
            let f = FileInfo {
                full_name: path.into(),
                dir,
                last_modified: modified % 100_000_000_000_000_000,
                last_info_updated: info,
                size_in_bytes: size,
                file_mode: FileMode(mode),
                owner_node: "node-a".into(),
                deletion: !dir,
            };
            let bytes = serde_json::to_vec(&f).unwrap();
            prop_assert_eq!(read(&bytes), Some((f, bytes.len())));
        }
    }
}
