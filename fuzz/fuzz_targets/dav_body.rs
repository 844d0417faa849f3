//! The XML bodies of `PROPFIND`, `PROPPATCH` and `LOCK`, as any client may send them: reading
//! never panics (nor overflows the stack: nesting is bounded); what one reads is refused or
//! understood by each of the three; an element read is written back as XML that reads the same.

#![no_main]

use dftp_core::dav::{request, xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = request::propfind(data);
    let _ = request::proppatch(data);
    let _ = request::lockinfo(data);
    if let Ok(root) = xml::parse(data) {
        let mut out = String::new();
        root.write(&mut out);
        let again = xml::parse(out.as_bytes()).expect("what we write reads back");
        let mut out2 = String::new();
        again.write(&mut out2);
        assert_eq!(out, out2, "writing is stable");
    }
});
