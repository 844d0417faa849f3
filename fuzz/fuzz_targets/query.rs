//! Query strings of the public interface on arbitrary UTF-8 (`request::Query`, with what is
//! read of its values: `ListingOrder` for listings' `?sort=&order=`, `Search` for `/find/`'s
//! `?q=&type=`): nothing may panic, the hop count is the one `incoming_hops` reads, and an
//! accepted order comes back from the query string it writes for its links.

#![no_main]

use dftp_core::request::{incoming_hops, Query};
use dftp_core::{ListingOrder, Search};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let q = Query::parse(Some(raw));
    assert_eq!(q.hops, incoming_hops(Some(raw)));
    if let Ok(order) = ListingOrder::parse(q.sort.as_deref(), q.order.as_deref()) {
        let again = Query::parse(Some(&order.query()));
        assert_eq!(ListingOrder::parse(again.sort.as_deref(), again.order.as_deref()), Ok(order));
    }
    if let Ok(search) = Search::parse(q.q.as_deref(), q.kind.as_deref()) {
        let none = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
        assert_eq!(search.is_everything(), none(&q.q) && none(&q.kind));
    }
});
