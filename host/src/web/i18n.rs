//! Languages of the web pages: Fluent messages (host/locales/*.ftl) in English,
//! Persian (right to left) and Swahili, and the user's choice of digits and calendar.
//!
//! Object, field and picklist names come from the metadata; a locale may translate
//! them with `object-<name>`, `field-<object>-<field>` / `field-<field>` and
//! `value-<value>` keys, else the metadata's label is shown.

use std::collections::HashMap;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language of the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Locale {
    En,
    Fa,
    Sw,
}

impl Locale {
    pub const ALL: [Locale; 3] = [Locale::En, Locale::Fa, Locale::Sw];

    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Fa => "fa",
            Locale::Sw => "sw",
        }
    }

    /// The language's own name, as a language menu shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::Fa => "فارسی",
            Locale::Sw => "Kiswahili",
        }
    }

    pub fn parse(code: &str) -> Option<Locale> {
        Locale::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The first supported language of an `Accept-Language` header, else English.
    pub fn from_accept_language(header: &str) -> Locale {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .filter_map(|tag| tag.trim().split('-').next())
            .find_map(|primary| Locale::parse(&primary.to_ascii_lowercase()))
            .unwrap_or(Locale::En)
    }

    pub fn rtl(self) -> bool {
        self == Locale::Fa
    }

    fn source(self) -> &'static str {
        match self {
            Locale::En => include_str!("../../locales/en.ftl"),
            Locale::Fa => include_str!("../../locales/fa.ftl"),
            Locale::Sw => include_str!("../../locales/sw.ftl"),
        }
    }
}

/// How numbers are written on the pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digits {
    Latin,
    Persian,
}

impl Digits {
    pub fn code(self) -> &'static str {
        match self {
            Digits::Latin => "latin",
            Digits::Persian => "persian",
        }
    }
    pub fn parse(code: &str) -> Option<Digits> {
        match code {
            "latin" => Some(Digits::Latin),
            "persian" => Some(Digits::Persian),
            _ => None,
        }
    }
}

/// The calendar dates are shown in (stored dates are always Gregorian ISO 8601).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calendar {
    Gregorian,
    SolarHijri,
}

impl Calendar {
    pub fn code(self) -> &'static str {
        match self {
            Calendar::Gregorian => "gregorian",
            Calendar::SolarHijri => "hijri",
        }
    }
    pub fn parse(code: &str) -> Option<Calendar> {
        match code {
            "gregorian" => Some(Calendar::Gregorian),
            "hijri" => Some(Calendar::SolarHijri),
            _ => None,
        }
    }
}

/// A user's choices for the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preferences {
    pub locale: Locale,
    pub digits: Digits,
    pub calendar: Calendar,
}

impl Preferences {
    /// What a new user of `locale` sees: Persian digits and calendar for Persian.
    pub fn defaults_for(locale: Locale) -> Preferences {
        let persian = locale == Locale::Fa;
        Preferences {
            locale,
            digits: if persian {
                Digits::Persian
            } else {
                Digits::Latin
            },
            calendar: if persian {
                Calendar::SolarHijri
            } else {
                Calendar::Gregorian
            },
        }
    }
}

static BUNDLES: LazyLock<HashMap<Locale, FluentBundle<FluentResource>>> = LazyLock::new(|| {
    Locale::ALL
        .into_iter()
        .map(|locale| {
            let resource = FluentResource::try_new(locale.source().to_string())
                .unwrap_or_else(|(_, errors)| panic!("{}.ftl: {errors:?}", locale.code()));
            let lang = locale.code().parse().expect("a valid language tag");
            let mut bundle = FluentBundle::new_concurrent(vec![lang]);
            // No bidi isolation marks: the page's `dir` and `<bdi>` do that job and
            // the marks would end up in copied text.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .unwrap_or_else(|e| panic!("{}.ftl: {e:?}", locale.code()));
            (locale, bundle)
        })
        .collect()
});

/// Translates for one request: the user's language, digits and calendar.
#[derive(Clone, Debug)]
pub struct Tr {
    pub prefs: Preferences,
}

impl Tr {
    pub fn new(prefs: Preferences) -> Tr {
        Tr { prefs }
    }

    pub fn lang(&self) -> &'static str {
        self.prefs.locale.code()
    }

    pub fn dir(&self) -> &'static str {
        if self.prefs.locale.rtl() {
            "rtl"
        } else {
            "ltr"
        }
    }

    fn lookup(&self, key: &str, args: Option<&FluentArgs>) -> Option<String> {
        let locales = [self.prefs.locale, Locale::En];
        locales.iter().find_map(|locale| {
            let bundle = &BUNDLES[locale];
            let pattern = bundle.get_message(key)?.value()?;
            let mut errors = Vec::new();
            Some(
                bundle
                    .format_pattern(pattern, args, &mut errors)
                    .into_owned(),
            )
        })
    }

    /// The message `key`; the key itself when no language has it (visible in review).
    pub fn t(&self, key: &str) -> String {
        self.lookup(key, None).unwrap_or_else(|| key.to_string())
    }

    /// The message `key` with one string argument.
    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name, FluentValue::from(value.to_string()));
        self.lookup(key, Some(&args))
            .map(|s| self.digits(&s))
            .unwrap_or_else(|| key.to_string())
    }

    /// The message `key` with a count (for plurals).
    pub fn tn(&self, key: &str, count: usize) -> String {
        let mut args = FluentArgs::new();
        args.set("count", FluentValue::from(count));
        self.lookup(key, Some(&args))
            .map(|s| self.digits(&s))
            .unwrap_or_else(|| key.to_string())
    }

    /// An object's plural label in this language.
    pub fn object(&self, name: &str, label: &str) -> String {
        self.lookup(&format!("object-{name}"), None)
            .unwrap_or_else(|| label.to_string())
    }

    /// A field's label in this language.
    pub fn field(&self, object: &str, name: &str, label: &str) -> String {
        self.lookup(&format!("field-{object}-{name}"), None)
            .or_else(|| self.lookup(&format!("field-{name}"), None))
            .unwrap_or_else(|| label.to_string())
    }

    /// A picklist value in this language (the stored value stays as it is).
    pub fn value(&self, value: &str) -> String {
        let key: String = value
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '-' })
            .collect();
        self.lookup(&format!("value-{}", key.to_lowercase()), None)
            .unwrap_or_else(|| value.to_string())
    }

    /// `text` with its ASCII digits written as the user chose.
    pub fn digits(&self, text: &str) -> String {
        match self.prefs.digits {
            Digits::Latin => text.to_string(),
            Digits::Persian => text
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) if c.is_ascii_digit() => char::from_u32(0x06F0 + d).unwrap_or(c),
                    _ => c,
                })
                .collect(),
        }
    }

    /// A stored date (`YYYY-MM-DD`) or instant (RFC 3339) in the user's calendar;
    /// instants keep their time of day (UTC).
    pub fn date(&self, stored: &str) -> String {
        let (day, time) = match stored.split_once('T') {
            Some((d, t)) => (d, Some(t.get(..5).unwrap_or(t))),
            None => (stored, None),
        };
        let Ok(date) = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
            return self.digits(stored);
        };
        let day = match self.prefs.calendar {
            Calendar::Gregorian => date.format("%Y-%m-%d").to_string(),
            Calendar::SolarHijri => {
                let (y, m, d) = to_solar_hijri(date);
                format!("{y:04}/{m:02}/{d:02}")
            }
        };
        let shown = match time {
            Some(t) => format!("{day} {t}"),
            None => day,
        };
        self.digits(&shown)
    }
}

impl Tr {
    /// A stored date (`YYYY-MM-DD`) or date and time (`YYYY-MM-DDTHH:MM`, as a
    /// date-time input holds it) as the user types it: the browser's own pickers
    /// for the Gregorian calendar; for the Solar Hijri calendar a text input
    /// holding `1403/01/01` or `1403/01/01 14:30` in the user's digits. Anything
    /// else (what was typed and refused) is given back as it is.
    pub fn date_input(&self, stored: &str) -> String {
        let (day, time) = match stored.split_once('T') {
            Some((day, time)) => (day, Some(time)),
            None => (stored, None),
        };
        let gregorian = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .ok()
            .filter(|d| chrono::Datelike::year(d) >= MODERN);
        match (self.prefs.calendar, gregorian) {
            (Calendar::SolarHijri, Some(date)) => {
                let (y, m, d) = to_solar_hijri(date);
                let day = format!("{y:04}/{m:02}/{d:02}");
                self.digits(&match time {
                    Some(time) => format!("{day} {time}"),
                    None => day,
                })
            }
            _ => stored.to_string(),
        }
    }

    /// A typed date as stored (`YYYY-MM-DD`), or a date and time as a date-time
    /// input sends it (`YYYY-MM-DDTHH:MM`): for a user of the Solar Hijri
    /// calendar, `1403/01/01` (or with `-`, in Persian or Latin digits) becomes
    /// `2024-03-20` and `1403/01/01 14:30` becomes `2024-03-20T14:30`. What does
    /// not read as a date is given back as typed, for the records service to
    /// refuse beside its field.
    pub fn typed_date(&self, typed: &str) -> String {
        if self.prefs.calendar != Calendar::SolarHijri {
            return typed.to_string();
        }
        let latin: String = typed.trim().chars().map(latin_digit).collect();
        let (day, time) = match latin.split_once([' ', 'T']) {
            Some((day, time)) => (day, Some(time.trim())),
            None => (latin.as_str(), None),
        };
        let parts: Vec<&str> = day.split(['/', '-']).collect();
        let [y, m, d] = parts[..] else {
            return typed.to_string();
        };
        let date = match (y.parse(), m.parse(), d.parse()) {
            (Ok(y), Ok(m), Ok(d)) if y < i64::from(MODERN) => from_solar_hijri(y, m, d),
            _ => None,
        };
        let time = time.map(|t| chrono::NaiveTime::parse_from_str(t, "%H:%M"));
        match (date, time) {
            (Some(date), None) => date.format("%Y-%m-%d").to_string(),
            (Some(date), Some(Ok(time))) => {
                format!("{}T{}", date.format("%Y-%m-%d"), time.format("%H:%M"))
            }
            _ => typed.to_string(),
        }
    }
}

/// Years from which a date is Gregorian rather than Solar Hijri (1403 AP is 2024).
const MODERN: i32 = 1700;

/// Persian and Arabic-Indic digits as Latin ones.
fn latin_digit(c: char) -> char {
    match c {
        '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
        '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
        _ => c,
    }
}

/// Solar Hijri to Gregorian; `None` for a day the calendar does not have.
pub fn from_solar_hijri(jy: i64, jm: i64, jd: i64) -> Option<chrono::NaiveDate> {
    if !(1..=3177).contains(&jy) || !(1..=12).contains(&jm) {
        return None;
    }
    let (leap, march) = jalali_year(jy);
    let days_in_month = match jm {
        1..=6 => 31,
        7..=11 => 30,
        _ if leap == 0 => 30,
        _ => 29,
    };
    if !(1..=days_in_month).contains(&jd) {
        return None;
    }
    let before = if jm <= 7 {
        (jm - 1) * 31
    } else {
        186 + (jm - 7) * 30
    };
    let nowruz = chrono::NaiveDate::from_ymd_opt((jy + 621) as i32, 3, march as u32)?;
    nowruz.checked_add_days(chrono::Days::new((before + jd - 1) as u64))
}

/// Gregorian to Solar Hijri (the Iranian calendar), by the arithmetic of
/// Borkowski's algorithm as used by jalaali-js (exact for 1 to 3177 AP).
pub fn to_solar_hijri(date: chrono::NaiveDate) -> (i64, i64, i64) {
    use chrono::Datelike;
    let (gy, gm, gd) = (date.year() as i64, date.month() as i64, date.day() as i64);
    let jdn = gregorian_to_day(gy, gm, gd);
    let mut jy = gy - 621;
    let (leap, march) = jalali_year(jy);
    let mut k = jdn - gregorian_to_day(gy, 3, march);
    if k >= 0 {
        if k <= 185 {
            return (jy, 1 + k / 31, k % 31 + 1);
        }
        k -= 186;
    } else {
        jy -= 1;
        k += 179;
        if leap == 1 {
            k += 1;
        }
    }
    (jy, 7 + k / 30, k % 30 + 1)
}

/// (years since the last leap year, 0 for a leap year; the day of March of Nowruz)
/// for the Solar Hijri year `jy`.
fn jalali_year(jy: i64) -> (i64, i64) {
    const BREAKS: [i64; 20] = [
        -61, 9, 38, 199, 426, 686, 756, 818, 1111, 1181, 1210, 1635, 2060, 2097, 2192, 2262, 2324,
        2394, 2456, 3178,
    ];
    let gy = jy + 621;
    let mut leap_j = -14;
    let mut jp = BREAKS[0];
    let mut jump = 0;
    for &jm in &BREAKS[1..] {
        jump = jm - jp;
        if jy < jm {
            break;
        }
        leap_j += jump / 33 * 8 + (jump % 33) / 4;
        jp = jm;
    }
    let mut n = jy - jp;
    leap_j += n / 33 * 8 + (n % 33 + 3) / 4;
    if jump % 33 == 4 && jump - n == 4 {
        leap_j += 1;
    }
    let leap_g = gy / 4 - (gy / 100 + 1) * 3 / 4 - 150;
    let march = 20 + leap_j - leap_g;
    if jump - n < 6 {
        n = n - jump + (jump + 4) / 33 * 33;
    }
    let mut leap = ((n + 1) % 33 - 1) % 4;
    if leap == -1 {
        leap = 4;
    }
    (leap, march)
}

/// The Julian day number of a Gregorian date.
fn gregorian_to_day(gy: i64, gm: i64, gd: i64) -> i64 {
    let d =
        (gy + (gm - 8) / 6 + 100100) * 1461 / 4 + (153 * ((gm + 9) % 12) + 2) / 5 + gd - 34840408;
    d - (gy + 100100 + (gm - 8) / 6) / 100 * 3 / 4 + 752
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(s: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_day_converts_to_solar_hijri_and_back() {
        let mut day = ymd("1990-01-01");
        while day < ymd("2040-01-01") {
            let (y, m, d) = to_solar_hijri(day);
            assert_eq!(from_solar_hijri(y, m, d), Some(day), "{day} is {y}/{m}/{d}");
            day = day.succ_opt().unwrap();
        }
        assert_eq!(
            from_solar_hijri(1403, 12, 30),
            Some(ymd("2025-03-20")),
            "a leap year's last day"
        );
        assert_eq!(
            from_solar_hijri(1404, 12, 30),
            None,
            "1404 is not a leap year"
        );
        assert_eq!(from_solar_hijri(1403, 13, 1), None);
        assert_eq!(from_solar_hijri(1403, 7, 31), None);
    }

    #[test]
    fn a_solar_hijri_user_types_and_reads_dates_in_their_calendar() {
        let mut prefs = Preferences::defaults_for(Locale::Fa);
        prefs.calendar = Calendar::SolarHijri;
        let tr = Tr::new(prefs);
        assert_eq!(tr.typed_date("۱۴۰۳/۰۱/۰۱"), "2024-03-20");
        assert_eq!(tr.typed_date("1403-1-1"), "2024-03-20");
        assert_eq!(
            tr.typed_date("1403/13/01"),
            "1403/13/01",
            "refused later by name"
        );
        assert_eq!(
            tr.typed_date("2024-03-20"),
            "2024-03-20",
            "a Gregorian date stays"
        );
        assert_eq!(tr.date_input("2024-03-20"), tr.digits("1403/01/01"));
        assert_eq!(tr.date_input("1403/13/01"), "1403/13/01");
        let gregorian = Tr::new(Preferences::defaults_for(Locale::En));
        assert_eq!(gregorian.typed_date("1403/01/01"), "1403/01/01");
        assert_eq!(gregorian.date_input("2024-03-20"), "2024-03-20");
        // A date and time: the time of day is kept as typed.
        assert_eq!(tr.typed_date("۱۴۰۳/۰۱/۰۱ ۱۴:۳۰"), "2024-03-20T14:30");
        assert_eq!(tr.typed_date("1403/1/1T9:05"), "2024-03-20T09:05");
        assert_eq!(tr.typed_date("1403/01/01 25:00"), "1403/01/01 25:00");
        assert_eq!(
            tr.date_input("2024-03-20T14:30"),
            tr.digits("1403/01/01 14:30")
        );
        assert_eq!(gregorian.date_input("2024-03-20T14:30"), "2024-03-20T14:30");
        assert_eq!(gregorian.typed_date("2024-03-20T14:30"), "2024-03-20T14:30");
    }

    #[test]
    fn nowruz_and_year_ends_convert_to_the_solar_hijri_calendar() {
        assert_eq!(to_solar_hijri(ymd("2024-03-20")), (1403, 1, 1));
        assert_eq!(to_solar_hijri(ymd("2024-03-19")), (1402, 12, 29));
        assert_eq!(to_solar_hijri(ymd("2025-03-21")), (1404, 1, 1));
        // 1403 is a leap year: Esfand has 30 days.
        assert_eq!(to_solar_hijri(ymd("2025-03-20")), (1403, 12, 30));
        assert_eq!(to_solar_hijri(ymd("2023-09-23")), (1402, 7, 1));
        assert_eq!(to_solar_hijri(ymd("2000-01-01")), (1378, 10, 11));
    }

    #[test]
    fn every_locale_parses_and_has_every_english_message() {
        let en = Locale::En.source();
        let keys: Vec<&str> = en
            .lines()
            .filter(|l| !l.starts_with(['#', ' ']) && l.contains(" = "))
            .map(|l| l.split(" = ").next().unwrap())
            .collect();
        for locale in Locale::ALL {
            let bundle = &BUNDLES[&locale];
            for key in &keys {
                assert!(
                    bundle.has_message(key),
                    "{}.ftl has no message {key}",
                    locale.code()
                );
            }
        }
    }

    #[test]
    fn persian_pages_read_right_to_left_with_persian_digits_and_dates() {
        let tr = Tr::new(Preferences::defaults_for(Locale::Fa));
        assert_eq!(tr.dir(), "rtl");
        assert_eq!(tr.digits("Page 12"), "Page ۱۲");
        assert_eq!(tr.date("2024-03-20"), "۱۴۰۳/۰۱/۰۱");
        assert_eq!(tr.value("in progress"), "در دست کار");
        let en = Tr::new(Preferences::defaults_for(Locale::En));
        assert_eq!(en.date("2024-03-20T09:30:00Z"), "2024-03-20 09:30");
        assert_eq!(en.tn("list-showing", 1), "One record on this page");
        assert_eq!(
            Locale::from_accept_language("de-DE, sw;q=0.8, en;q=0.5"),
            Locale::Sw
        );
    }
}
