use super::*;

const GOOD: &str = r#"
[default]
currency = "EUR"
base_minor = 250
per_km_minor = 120
per_minute_minor = 30
minimum_minor = 700

[cities.zurich]
currency = "CHF"
base_minor = 600
per_km_minor = 380
per_minute_minor = 0
minimum_minor = 1500
maximum_minor = 30000
"#;

fn city(s: &str) -> City {
    City::new(s).unwrap()
}

/// The error text of `GOOD` with `from` replaced by `to`.
fn error_of(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    TariffBook::parse(&GOOD.replace(from, to), false, "t.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn a_city_gets_its_own_tariff_and_others_the_default() {
    let book = TariffBook::parse(GOOD, false, "t.toml").unwrap();
    let zurich = book.for_city(&city("zurich"));
    assert_eq!(zurich.currency, "CHF");
    assert_eq!(zurich.maximum_minor, Some(30_000));
    assert_eq!(book.for_city(&city("oslo")).currency, "EUR");
    assert_eq!(book.cities().count(), 1);
}

#[test]
fn json_reads_the_same() {
    let json = r#"{"default": {"currency": "USD", "base_minor": 1, "per_km_minor": 2,
        "per_minute_minor": 3, "minimum_minor": 4},
        "cities": {"nyc": {"currency": "USD", "base_minor": 300, "per_km_minor": 140,
        "per_minute_minor": 40, "minimum_minor": 1000}}}"#;
    let book = TariffBook::parse(json, true, "t.json").unwrap();
    assert_eq!(book.for_city(&city("nyc")).base_minor, 300);
    assert_eq!(book.for_city(&city("la")).base_minor, 1);
}

#[test]
fn builtin_covers_the_demo_cities_in_their_currencies() {
    let book = TariffBook::builtin();
    for (c, cur) in [
        ("berlin", "EUR"),
        ("paris", "EUR"),
        ("lisbon", "EUR"),
        ("london", "GBP"),
        ("nyc", "USD"),
        ("tokyo", "EUR"),
    ] {
        assert_eq!(book.for_city(&city(c)).currency, cur, "{c}");
    }
}

#[test]
fn the_shipped_example_file_is_valid_and_matches_the_builtin_book() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/tariffs.toml");
    assert_eq!(TariffBook::load(&path).unwrap(), TariffBook::builtin());
}

#[test]
fn a_negative_amount_names_city_and_field() {
    let e = error_of("base_minor = 600", "base_minor = -5");
    assert_eq!(
        e,
        "tariffs file t.toml: city \"zurich\", field base_minor: -5 is negative"
    );
}

#[test]
fn zero_per_km_with_zero_base_is_refused() {
    let e = error_of(
        "base_minor = 600\nper_km_minor = 380",
        "base_minor = 0\nper_km_minor = 0",
    );
    assert!(
        e.starts_with(
            "tariffs file t.toml: city \"zurich\", field per_km_minor: is 0 and so is base_minor"
        ),
        "{e}"
    );
}

#[test]
fn a_minimum_above_the_maximum_is_refused() {
    let e = error_of("maximum_minor = 30000", "maximum_minor = 1000");
    assert_eq!(
        e,
        "tariffs file t.toml: city \"zurich\", field minimum_minor: minimum_minor 1500 is above maximum_minor 1000"
    );
}

#[test]
fn a_bad_currency_code_is_refused() {
    for bad in ["\"chf\"", "\"EURO\"", "\"€\"", "\"\""] {
        let e = error_of("\"CHF\"", bad);
        assert!(
            e.starts_with("tariffs file t.toml: city \"zurich\", field currency: "),
            "{e}"
        );
        assert!(e.contains("is not an ISO 4217 code"), "{e}");
    }
}

#[test]
fn an_unknown_field_is_refused_by_name() {
    let e = error_of(
        "per_minute_minor = 0",
        "per_minute_minor = 0\nper_mile_minor = 5",
    );
    assert!(e.starts_with("tariffs file t.toml: city \"zurich\""), "{e}");
    assert!(e.contains("unknown field `per_mile_minor`"), "{e}");
    let e = error_of("[default]", "[defaults]");
    assert!(e.contains("unknown field `defaults`"), "{e}");
}

#[test]
fn a_wrongly_typed_field_is_named_with_its_line() {
    let e = error_of("per_km_minor = 380", "per_km_minor = 3.8");
    assert!(
        e.starts_with("tariffs file t.toml: city \"zurich\", field per_km_minor: line 12: "),
        "{e}"
    );
    let e = error_of("minimum_minor = 700", "minimum_minor = \"seven\"");
    assert!(
        e.starts_with("tariffs file t.toml: default, field minimum_minor: "),
        "{e}"
    );
}

#[test]
fn a_missing_field_or_default_is_named() {
    let e = error_of("minimum_minor = 1500\n", "");
    assert!(e.contains("city \"zurich\""), "{e}");
    assert!(e.contains("missing field `minimum_minor`"), "{e}");
    let no_default = "[cities]\n";
    let e = TariffBook::parse(no_default, false, "t.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing field `default`"), "{e}");
}

#[test]
fn a_bad_city_name_or_syntax_is_refused() {
    let e = error_of("[cities.zurich]", "[cities.\"zü rich\"]");
    assert!(e.contains("city \"zü rich\""), "{e}");
    let e = error_of("[default]", "[default");
    assert!(e.starts_with("tariffs file t.toml: line 2: "), "{e}");
    let missing = TariffBook::load(Path::new("/nonexistent/t.toml")).unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("cannot read the tariffs file /nonexistent/t.toml")
    );
}
