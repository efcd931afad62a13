//! `platforms`: every platform row and pkgsCross system, what can be checked, whether it runs here.

pub fn platforms_table() -> String {
    crate::platform::listing::table()
}
