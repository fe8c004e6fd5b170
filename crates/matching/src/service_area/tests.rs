use super::*;

/// A 1° square from (0, 0) to (1, 1), and a U open to the north: its notch,
/// lat 0.5..2 and lon 1..2, lies inside the bounding box but outside the area.
const GOOD: &str = r#"
[[city]]
name = "square"
area = [
  { lat = 0.0, lon = 0.0 },
  { lat = 0.0, lon = 1.0 },
  { lat = 1.0, lon = 1.0 },
  { lat = 1.0, lon = 0.0 },
]

[[city]]
name = "cove"
area = [
  { lat = 0.0, lon = 0.0 },
  { lat = 0.0, lon = 3.0 },
  { lat = 2.0, lon = 3.0 },
  { lat = 2.0, lon = 2.0 },
  { lat = 0.5, lon = 2.0 },
  { lat = 0.5, lon = 1.0 },
  { lat = 2.0, lon = 1.0 },
  { lat = 2.0, lon = 0.0 },
  { lat = 0.0, lon = 0.0 },
]
"#;

fn city(s: &str) -> City {
    City::new(s).unwrap()
}

fn at(lat: f64, lon: f64) -> LatLng {
    LatLng::new(lat, lon).unwrap()
}

fn areas() -> ServiceAreas {
    ServiceAreas::parse(GOOD, "c.toml").unwrap()
}

/// The error text of `GOOD` with `from` replaced by `to`.
fn error_of(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    ServiceAreas::parse(&GOOD.replacen(from, to, 1), "c.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn just_inside_is_served_and_just_outside_is_not() {
    let (a, square) = (areas(), city("square"));
    let eps = 1e-9;
    assert!(a.admits(&square, at(0.5, 0.5)));
    assert!(a.admits(&square, at(0.5, 1.0 - eps)));
    assert!(a.admits(&square, at(eps, eps)));
    assert!(!a.admits(&square, at(0.5, 1.0 + eps)));
    assert!(!a.admits(&square, at(-eps, 0.5)));
    assert!(!a.admits(&square, at(40.0, -74.0)));
}

#[test]
fn a_pickup_on_an_edge_or_a_vertex_is_outside() {
    let (a, square) = (areas(), city("square"));
    for (lat, lon) in [(0.5, 1.0), (0.0, 0.5), (1.0, 1.0), (0.0, 0.0)] {
        assert!(!a.admits(&square, at(lat, lon)), "{lat},{lon}");
    }
}

#[test]
fn the_notch_of_a_concave_area_is_outside() {
    let (a, cove) = (areas(), city("cove"));
    assert!(!a.admits(&cove, at(1.5, 1.5)), "in the notch");
    assert!(
        !a.admits(&cove, at(0.5 + 1e-9, 1.5)),
        "just above its floor"
    );
    assert!(a.admits(&cove, at(0.5 - 1e-9, 1.5)), "just below its floor");
    assert!(a.admits(&cove, at(1.5, 0.5)), "west arm");
    assert!(a.admits(&cove, at(1.5, 2.5)), "east arm");
}

#[test]
fn a_city_without_an_area_is_served_everywhere() {
    let a = areas();
    assert!(a.admits(&city("oslo"), at(59.9, 10.7)));
    assert!(ServiceAreas::none().admits(&city("square"), at(-80.0, 170.0)));
    assert_eq!(a.cities().count(), 2);
}

#[test]
fn a_bad_file_is_named_with_its_city_and_field() {
    let cases = [
        (
            "{ lat = 1.0, lon = 1.0 },",
            "{ lat = 1.0, lon = 1.0, alt = 3.0 },",
            r#"cities file c.toml: city "square", field area[2].alt: unknown field `alt`"#,
        ),
        (
            r#"name = "square""#,
            "name = \"square\"\ncolour = \"red\"",
            r#"cities file c.toml: city "square", field colour: unknown field `colour`"#,
        ),
        (
            "{ lat = 1.0, lon = 0.0 },\n]",
            "{ lat = 91.0, lon = 0.0 },\n]",
            r#"cities file c.toml: city "square", field area[3].lat: invalid latitude: 91"#,
        ),
        (
            "{ lat = 1.0, lon = 0.0 },\n]",
            "{ lat = 1.0, lon = -180.5 },\n]",
            r#"cities file c.toml: city "square", field area[3].lon: invalid longitude: -180.5"#,
        ),
        (
            r#"name = "cove""#,
            r#"name = "square""#,
            r#"cities file c.toml: city "square", field name: the city is listed twice"#,
        ),
        (
            r#"name = "square""#,
            r#"name = "Sq uare""#,
            r#"cities file c.toml: city "Sq uare", field name: "#,
        ),
        (
            "{ lat = 2.0, lon = 2.0 },",
            "{ lat = -1.0, lon = 2.0 },",
            r#"cities file c.toml: city "cove", field area: "#,
        ),
        (
            r#"name = "square""#,
            "nom = \"square\"",
            r#"cities file c.toml: city #1, field nom: unknown field `nom`"#,
        ),
        (
            "name = \"square\"\n",
            "",
            "cities file c.toml: city #1: missing field `name`",
        ),
        (
            "{ lat = 1.0, lon = 0.0 },\n]",
            "{ lat = 1.0 },\n]",
            r#"cities file c.toml: city "square", field area[3]: missing field `lon`"#,
        ),
        (
            "[[city]]\nname = \"square\"",
            "zoom = 3\n[[city]]\nname = \"square\"",
            "cities file c.toml: line 2: unknown field `zoom`",
        ),
    ];
    for (from, to, want) in cases {
        let err = error_of(from, to);
        assert!(err.starts_with(want), "{to}: {err}");
    }
}

#[test]
fn an_area_needs_three_distinct_vertices() {
    let two = r#"[[city]]
name = "line"
area = [{ lat = 0.0, lon = 0.0 }, { lat = 1.0, lon = 1.0 }, { lat = 0.0, lon = 0.0 }]
"#;
    let err = ServiceAreas::parse(two, "c.toml").unwrap_err().to_string();
    assert_eq!(
        err,
        r#"cities file c.toml: city "line", field area: has 2 distinct vertices; a polygon needs at least 3"#
    );
    let empty = "[[city]]\nname = \"none\"\narea = []\n";
    let err = ServiceAreas::parse(empty, "c.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("has 0 distinct vertices"), "{err}");
}

#[test]
fn an_unreadable_file_is_named() {
    let err = ServiceAreas::load(Path::new("/nonexistent/cities.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read the cities file /nonexistent/cities.toml: "),
        "{err}"
    );
}

#[test]
fn the_local_cities_file_is_valid_and_covers_the_city_centres() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/cities.toml");
    let a = ServiceAreas::load(&path).unwrap();
    let centres = [
        ("berlin", 52.52, 13.405),
        ("paris", 48.8566, 2.3522),
        ("lisbon", 38.7223, -9.1393),
        ("london", 51.5074, -0.1278),
        ("nyc", 40.7128, -74.006),
    ];
    assert_eq!(a.cities().count(), centres.len());
    for (name, lat, lon) in centres {
        let centre = at(lat, lon);
        assert!(a.admits(&city(name), centre), "{name}");
        // 15 km out in every direction is in; 20 km out is not.
        for bearing in (0..360).step_by(10) {
            let near = centre.destination(f64::from(bearing), 15_000.0).unwrap();
            let far = centre.destination(f64::from(bearing), 20_000.0).unwrap();
            assert!(a.admits(&city(name), near), "{name} {bearing}");
            assert!(!a.admits(&city(name), far), "{name} {bearing}");
        }
    }
}
