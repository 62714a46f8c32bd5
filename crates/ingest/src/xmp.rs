//! Reading drone XMP packets: DJI's `drone-dji` schema (attribute and element form), and the
//! Autel, Parrot, Skydio and Pix4D/senseFly `Camera` schemas other vendors write.
//!
//! The packet is flattened into `(schema, path) -> text` first, whatever RDF form the
//! vendor chose (attributes on `rdf:Description`, property elements, `rdf:parseType=
//! "Resource"` structs, nested `rdf:Description`s, attributes on a struct element), and only
//! then interpreted. Schemas are recognised by namespace URI, so any prefix works.

use besikta_core::{BrownDistortion, RtkInfo};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::collections::HashMap;

/// The vendor schemas ingest understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Schema {
    /// `http://www.dji.com/drone-dji/1.0/`; Autel's newer firmware writes it too.
    Dji,
    /// Autel's own drone schema (older firmware), with DJI's property names.
    Autel,
    /// `http://www.parrot.com/drone-parrot/1.0/` (Anafi).
    Parrot,
    /// Skydio's `drone-skydio` schema.
    Skydio,
    /// The Pix4D / senseFly `Camera` schema (Parrot Sequoia, older Autel, senseFly).
    /// Its pitch is 0 at nadir and 90 at the horizon.
    Camera,
    /// `http://ns.adobe.com/tiff/1.0/`
    Tiff,
    Other,
}

impl Schema {
    fn from_namespace(uri: &[u8]) -> Schema {
        let uri = String::from_utf8_lossy(uri).to_ascii_lowercase();
        if uri.contains("dji.com/drone-dji") {
            Schema::Dji
        } else if uri.contains("autel") {
            Schema::Autel
        } else if uri.contains("parrot") {
            Schema::Parrot
        } else if uri.contains("skydio") {
            Schema::Skydio
        } else if uri.contains("pix4d.com/camera") || uri.contains("sensefly.com/camera") {
            Schema::Camera
        } else if uri.starts_with("http://ns.adobe.com/tiff/") {
            Schema::Tiff
        } else {
            Schema::Other
        }
    }

    /// For packets that use a prefix without declaring it (seen in vendor firmware).
    fn from_prefix(prefix: &[u8]) -> Schema {
        match prefix {
            b"drone-dji" => Schema::Dji,
            b"drone-parrot" => Schema::Parrot,
            b"drone-skydio" => Schema::Skydio,
            b"Camera" => Schema::Camera,
            b"tiff" => Schema::Tiff,
            _ => Schema::Other,
        }
    }

    fn attitude_source(self) -> &'static str {
        match self {
            Schema::Dji => "xmp-drone-dji",
            Schema::Autel => "xmp-autel",
            Schema::Parrot => "xmp-parrot",
            Schema::Skydio => "xmp-skydio",
            Schema::Camera => "xmp-camera",
            Schema::Tiff | Schema::Other => "xmp",
        }
    }
}

/// Yaw, pitch and roll in DJI's conventions (degrees; pitch -90 looks straight down).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Angles {
    pub yaw: Option<f64>,
    pub pitch: Option<f64>,
    pub roll: Option<f64>,
}

impl Angles {
    fn is_empty(&self) -> bool {
        self.yaw.is_none() && self.pitch.is_none() && self.roll.is_none()
    }
}

/// DJI `DewarpData`: factory calibration of this very camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dewarp {
    pub fx: f64,
    pub fy: f64,
    /// Principal point offsets from the image centre, pixels.
    pub cx_offset: f64,
    pub cy_offset: f64,
    pub distortion: BrownDistortion,
}

/// What the XMP packets say, interpreted into DJI's conventions.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct XmpFields {
    pub make: Option<String>,
    pub model: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub absolute_altitude_m: Option<f64>,
    pub relative_altitude_m: Option<f64>,
    pub gimbal: Angles,
    pub flight: Angles,
    /// Which schema the gimbal angles came from (`xmp-drone-dji`, `xmp-parrot`, ...).
    pub attitude_source: Option<&'static str>,
    pub calibrated_focal_px: Option<f64>,
    pub calibrated_center_px: Option<[f64; 2]>,
    pub dewarp: Option<Dewarp>,
    pub rtk: Option<RtkInfo>,
}

/// Flattened properties: `(schema, "Property" or "Struct/Field") -> text`.
type Properties = HashMap<(Schema, String), String>;

/// Parses XMP packets (the APP1 payload after the signature). Malformed XML stops the
/// packet where it breaks; what came before is kept.
pub(crate) fn read(packets: &[&[u8]]) -> XmpFields {
    let mut properties = Properties::new();
    for packet in packets {
        flatten(&String::from_utf8_lossy(packet), &mut properties);
    }
    interpret(&properties)
}

/// Parses one XMP packet given as text.
#[cfg(test)]
pub(crate) fn read_str(packet: &str) -> XmpFields {
    let mut properties = Properties::new();
    flatten(packet, &mut properties);
    interpret(&properties)
}

#[derive(Debug)]
struct Frame {
    /// Property path of this element (`""` outside any property).
    path: String,
    /// The schema of the outermost property this element is inside.
    schema: Option<Schema>,
    /// Collects the text of property elements.
    text: Option<String>,
}

fn flatten(packet: &str, out: &mut Properties) {
    let mut reader = NsReader::from_str(packet);
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let Ok((resolved, event)) = reader.read_resolved_event() else {
            return;
        };
        let element_schema = schema_of(&resolved);
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(event, Event::Empty(_));
                let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                let is_rdf = is_rdf_element(&resolved);
                let parent_path = stack.last().map_or("", |f| f.path.as_str()).to_string();
                let parent_schema = stack.last().and_then(|f| f.schema);
                let frame = if is_rdf || local == "xmpmeta" {
                    // rdf:RDF, rdf:Description, rdf:Seq/Bag/Alt/li and x:xmpmeta carry no
                    // property name of their own.
                    Frame {
                        path: parent_path,
                        schema: parent_schema,
                        text: None,
                    }
                } else {
                    Frame {
                        path: join(&parent_path, &local),
                        schema: parent_schema.or(Some(element_schema)),
                        text: Some(String::new()),
                    }
                };
                for attr in start.attributes().with_checks(false).flatten() {
                    let (attr_ns, attr_local) = reader.resolve_attribute(attr.key);
                    let attr_schema = match attr_ns {
                        ResolveResult::Bound(ns) => Schema::from_namespace(ns.as_ref()),
                        ResolveResult::Unknown(ref prefix) => Schema::from_prefix(prefix),
                        // Unprefixed attributes (`about`, `parseType`) are RDF syntax.
                        ResolveResult::Unbound => continue,
                    };
                    let key = attr.key.as_ref();
                    if key.starts_with(b"xmlns")
                        || key.starts_with(b"rdf:")
                        || key.starts_with(b"xml:")
                    {
                        continue;
                    }
                    let Ok(value) = attr.unescape_value() else {
                        continue;
                    };
                    let name = String::from_utf8_lossy(attr_local.as_ref());
                    let schema = frame.schema.unwrap_or(attr_schema);
                    out.entry((schema, join(&frame.path, &name)))
                        .or_insert_with(|| value.trim().to_string());
                }
                if is_empty {
                    continue;
                }
                stack.push(frame);
            }
            Event::Text(text) => {
                if let Some(slot) = nearest_text(&mut stack) {
                    slot.push_str(&text.decode().unwrap_or_default());
                }
            }
            Event::CData(data) => {
                if let Some(slot) = nearest_text(&mut stack) {
                    slot.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match reference.as_ref() {
                        b"amp" => Some('&'),
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"quot" => Some('"'),
                        b"apos" => Some('\''),
                        _ => None,
                    },
                };
                if let (Some(c), Some(slot)) = (resolved, nearest_text(&mut stack)) {
                    slot.push(c);
                }
            }
            Event::End(_) => {
                let Some(frame) = stack.pop() else {
                    continue;
                };
                if let (Some(text), Some(schema)) = (frame.text, frame.schema) {
                    let text = text.trim();
                    if !text.is_empty() {
                        out.entry((schema, frame.path))
                            .or_insert_with(|| text.to_string());
                    }
                }
            }
            Event::Eof => return,
            _ => {}
        }
    }
}

fn schema_of(resolved: &ResolveResult<'_>) -> Schema {
    match resolved {
        ResolveResult::Bound(ns) => Schema::from_namespace(ns.as_ref()),
        ResolveResult::Unknown(prefix) => Schema::from_prefix(prefix),
        ResolveResult::Unbound => Schema::Other,
    }
}

fn is_rdf_element(resolved: &ResolveResult<'_>) -> bool {
    match resolved {
        ResolveResult::Bound(ns) => ns.as_ref() == b"http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        ResolveResult::Unknown(prefix) => prefix.as_slice() == b"rdf",
        ResolveResult::Unbound => false,
    }
}

/// The text collector of the innermost property element (so `rdf:li` text goes to its list).
fn nearest_text(stack: &mut [Frame]) -> Option<&mut String> {
    stack.iter_mut().rev().find_map(|f| f.text.as_mut())
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}/{child}")
    }
}

/// A decimal (`+198.31`) or rational (`4001/100`) number.
fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    let value = match text.split_once('/') {
        Some((num, den)) => {
            let den: f64 = den.trim().parse().ok()?;
            (den != 0.0).then_some(num.trim().parse::<f64>().ok()? / den)?
        }
        None => text.parse().ok()?,
    };
    value.is_finite().then_some(value)
}

fn interpret(p: &Properties) -> XmpFields {
    let get = |schema: Schema, path: &str| p.get(&(schema, path.to_string())).map(String::as_str);
    let num = |schema: Schema, path: &str| get(schema, path).and_then(number);
    let first = |candidates: &[(Schema, &str)]| candidates.iter().find_map(|(s, k)| num(*s, k));

    let mut out = XmpFields {
        make: get(Schema::Tiff, "Make").map(str::to_string),
        model: get(Schema::Tiff, "Model").map(str::to_string),
        ..XmpFields::default()
    };

    // DJI and Autel share DJI's property names; Autel also has DJI's "Longtitude" typo.
    for schema in [Schema::Dji, Schema::Autel] {
        let angles = |prefix: &str| Angles {
            yaw: num(schema, &format!("{prefix}YawDegree")),
            pitch: num(schema, &format!("{prefix}PitchDegree")),
            roll: num(schema, &format!("{prefix}RollDegree")),
        };
        let gimbal = angles("Gimbal");
        if out.attitude_source.is_none() && !gimbal.is_empty() {
            out.gimbal = gimbal;
            out.attitude_source = Some(schema.attitude_source());
        }
        let flight = angles("Flight");
        if out.flight.is_empty() {
            out.flight = flight;
        }
        out.absolute_altitude_m = out
            .absolute_altitude_m
            .or_else(|| num(schema, "AbsoluteAltitude"));
        out.relative_altitude_m = out
            .relative_altitude_m
            .or_else(|| num(schema, "RelativeAltitude"));
        out.latitude = out
            .latitude
            .or_else(|| first(&[(schema, "GpsLatitude"), (schema, "Latitude")]));
        out.longitude = out.longitude.or_else(|| {
            first(&[
                (schema, "GpsLongitude"),
                (schema, "GpsLongtitude"),
                (schema, "Longitude"),
            ])
        });
        out.calibrated_focal_px = out
            .calibrated_focal_px
            .or_else(|| num(schema, "CalibratedFocalLength").filter(|f| *f > 0.0));
        if out.calibrated_center_px.is_none() {
            if let (Some(x), Some(y)) = (
                num(schema, "CalibratedOpticalCenterX"),
                num(schema, "CalibratedOpticalCenterY"),
            ) {
                out.calibrated_center_px = Some([x, y]);
            }
        }
        if out.dewarp.is_none() {
            out.dewarp = get(schema, "DewarpData").and_then(parse_dewarp);
        }
        if out.rtk.is_none() {
            let rtk = RtkInfo {
                flag: num(schema, "RtkFlag").map(|f| f as i64),
                std_lon_m: num(schema, "RtkStdLon"),
                std_lat_m: num(schema, "RtkStdLat"),
                std_hgt_m: num(schema, "RtkStdHgt"),
            };
            if rtk != RtkInfo::default() {
                out.rtk = Some(rtk);
            }
        }
    }

    // Parrot Anafi: the camera's attitude, already -90 at nadir.
    let parrot = Angles {
        yaw: num(Schema::Parrot, "CameraYawDegree"),
        pitch: num(Schema::Parrot, "CameraPitchDegree"),
        roll: num(Schema::Parrot, "CameraRollDegree"),
    };
    if out.attitude_source.is_none() && !parrot.is_empty() {
        out.gimbal = parrot;
        out.attitude_source = Some(Schema::Parrot.attitude_source());
    }
    if out.flight.is_empty() {
        out.flight = Angles {
            yaw: first(&[
                (Schema::Parrot, "FlightYawDegree"),
                (Schema::Parrot, "DroneYawDegree"),
            ]),
            pitch: first(&[
                (Schema::Parrot, "FlightPitchDegree"),
                (Schema::Parrot, "DronePitchDegree"),
            ]),
            roll: first(&[
                (Schema::Parrot, "FlightRollDegree"),
                (Schema::Parrot, "DroneRollDegree"),
            ]),
        };
    }

    // Skydio: orientation structs in the north-east-down frame, plus its own position.
    let skydio = Angles {
        yaw: num(Schema::Skydio, "CameraOrientationNED/Yaw"),
        pitch: num(Schema::Skydio, "CameraOrientationNED/Pitch"),
        roll: num(Schema::Skydio, "CameraOrientationNED/Roll"),
    };
    if out.attitude_source.is_none() && !skydio.is_empty() {
        out.gimbal = skydio;
        out.attitude_source = Some(Schema::Skydio.attitude_source());
    }
    if out.flight.is_empty() {
        out.flight = Angles {
            yaw: num(Schema::Skydio, "BodyOrientationNED/Yaw"),
            pitch: num(Schema::Skydio, "BodyOrientationNED/Pitch"),
            roll: num(Schema::Skydio, "BodyOrientationNED/Roll"),
        };
    }
    out.latitude = out.latitude.or_else(|| num(Schema::Skydio, "Latitude"));
    out.longitude = out.longitude.or_else(|| num(Schema::Skydio, "Longitude"));
    out.absolute_altitude_m = out
        .absolute_altitude_m
        .or_else(|| num(Schema::Skydio, "AbsoluteAltitude"));
    out.relative_altitude_m = out
        .relative_altitude_m
        .or_else(|| num(Schema::Skydio, "RelativeAltitude"));

    // Pix4D / senseFly Camera schema: pitch 0 is nadir, so DJI's pitch is 90 less.
    let camera = Angles {
        yaw: num(Schema::Camera, "Yaw"),
        pitch: num(Schema::Camera, "Pitch").map(|p| p - 90.0),
        roll: num(Schema::Camera, "Roll"),
    };
    if out.attitude_source.is_none() && !camera.is_empty() {
        out.gimbal = camera;
        out.attitude_source = Some(Schema::Camera.attitude_source());
    }
    out
}

/// `2020-09-11;3713.29,3713.29,7.02,-8.72,-0.1125,0.0148,-0.0000857,0.0000001,-0.0270`:
/// fx, fy, principal point offsets from the image centre, k1, k2, p1, p2, k3.
fn parse_dewarp(text: &str) -> Option<Dewarp> {
    let numbers = text.rsplit(';').next()?;
    let values: Vec<f64> = numbers
        .split(',')
        .map(number)
        .collect::<Option<Vec<f64>>>()?;
    let [fx, fy, cx_offset, cy_offset, k1, k2, p1, p2, k3] = values.as_slice() else {
        return None;
    };
    (*fx > 0.0 && *fy > 0.0).then_some(Dewarp {
        fx: *fx,
        fy: *fy,
        cx_offset: *cx_offset,
        cy_offset: *cy_offset,
        distortion: BrownDistortion {
            k1: *k1,
            k2: *k2,
            p1: *p1,
            p2: *p2,
            k3: *k3,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(namespaces: &str, attributes: &str, body: &str) -> String {
        format!(
            r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" {namespaces} {attributes}>
{body}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#
        )
    }

    const DJI_NS: &str = r#"xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/""#;

    #[test]
    fn dji_attribute_and_element_forms_agree() {
        let attributes = packet(
            DJI_NS,
            r#"tiff:Make="DJI" drone-dji:AbsoluteAltitude="+198.31" drone-dji:RelativeAltitude="+39.80"
               drone-dji:GimbalYawDegree="+45.00" drone-dji:GimbalPitchDegree="-89.90" drone-dji:GimbalRollDegree="+0.00"
               drone-dji:FlightYawDegree="+46.00" drone-dji:FlightPitchDegree="+1.80" drone-dji:FlightRollDegree="+3.00""#,
            "",
        );
        let elements = packet(
            DJI_NS,
            "",
            r#"<tiff:Make>DJI</tiff:Make>
               <drone-dji:AbsoluteAltitude>+198.31</drone-dji:AbsoluteAltitude>
               <drone-dji:RelativeAltitude>+39.80</drone-dji:RelativeAltitude>
               <drone-dji:GimbalYawDegree>+45.00</drone-dji:GimbalYawDegree>
               <drone-dji:GimbalPitchDegree>-89.90</drone-dji:GimbalPitchDegree>
               <drone-dji:GimbalRollDegree>+0.00</drone-dji:GimbalRollDegree>
               <drone-dji:FlightYawDegree>+46.00</drone-dji:FlightYawDegree>
               <drone-dji:FlightPitchDegree>+1.80</drone-dji:FlightPitchDegree>
               <drone-dji:FlightRollDegree>+3.00</drone-dji:FlightRollDegree>"#,
        );
        let a = read_str(&attributes);
        let e = read_str(&elements);
        assert_eq!(a, e);
        assert_eq!(a.make.as_deref(), Some("DJI"));
        assert_eq!(a.absolute_altitude_m, Some(198.31));
        assert_eq!(a.relative_altitude_m, Some(39.8));
        assert_eq!(a.gimbal.pitch, Some(-89.9));
        assert_eq!(a.gimbal.yaw, Some(45.0));
        assert_eq!(a.flight.roll, Some(3.0));
        assert_eq!(a.attitude_source, Some("xmp-drone-dji"));
    }

    #[test]
    fn prefix_does_not_matter_only_the_namespace() {
        // Autel's newer firmware writes DJI's namespace under the prefix `drone`, with
        // DJI's "Longtitude" typo.
        let xmp = packet(
            r#"xmlns:drone="http://www.dji.com/drone-dji/1.0/""#,
            r#"drone:GpsLatitude="47.64368732" drone:GpsLongtitude="16.47592717" drone:GimbalPitchDegree="-90.00"
               drone:RtkFlag="50" drone:RtkStdLon="0.01370" drone:RtkStdLat="0.01439" drone:RtkStdHgt="0.02969""#,
            "",
        );
        let x = read_str(&xmp);
        assert_eq!(x.latitude, Some(47.64368732));
        assert_eq!(x.longitude, Some(16.47592717));
        assert_eq!(x.gimbal.pitch, Some(-90.0));
        let rtk = x.rtk.unwrap();
        assert_eq!(rtk.flag, Some(50));
        assert_eq!(rtk.std_hgt_m, Some(0.02969));
    }

    #[test]
    fn dji_calibration_fields() {
        let xmp = packet(
            DJI_NS,
            r#"drone-dji:CalibratedFocalLength="3666.666504" drone-dji:CalibratedOpticalCenterX="2736.000000"
               drone-dji:CalibratedOpticalCenterY="1824.000000"
               drone-dji:DewarpData="2020-09-11;3713.290000000000,3713.290000000000,7.020000000000,-8.720000000000,-0.112575240000,0.014874430000,-0.000085720000,0.000000100000,-0.027064110000""#,
            "",
        );
        let x = read_str(&xmp);
        assert_eq!(x.calibrated_focal_px, Some(3666.666504));
        assert_eq!(x.calibrated_center_px, Some([2736.0, 1824.0]));
        let d = x.dewarp.unwrap();
        assert_eq!(
            (d.fx, d.fy, d.cx_offset, d.cy_offset),
            (3713.29, 3713.29, 7.02, -8.72)
        );
        assert_eq!(d.distortion.k1, -0.11257524);
        assert_eq!(d.distortion.k3, -0.02706411);
        assert_eq!(parse_dewarp("2020-09-11;1,2,3"), None);
    }

    #[test]
    fn parrot_anafi_elements() {
        let xmp = packet(
            r#"xmlns:drone-parrot="http://www.parrot.com/drone-parrot/1.0/""#,
            "",
            r#"<drone-parrot:CameraPitchDegree>-78.362686</drone-parrot:CameraPitchDegree>
               <drone-parrot:CameraRollDegree>-0.322913</drone-parrot:CameraRollDegree>
               <drone-parrot:CameraYawDegree>176.310745</drone-parrot:CameraYawDegree>
               <drone-parrot:FlightYawDegree>170.5</drone-parrot:FlightYawDegree>"#,
        );
        let x = read_str(&xmp);
        assert_eq!(x.gimbal.pitch, Some(-78.362686));
        assert_eq!(x.gimbal.roll, Some(-0.322913));
        assert_eq!(x.gimbal.yaw, Some(176.310745));
        assert_eq!(x.flight.yaw, Some(170.5));
        assert_eq!(x.attitude_source, Some("xmp-parrot"));
    }

    #[test]
    fn skydio_structs_in_both_forms() {
        let ns = r#"xmlns:drone-skydio="https://www.skydio.com/drone-skydio/1.0/""#;
        let resource = packet(
            ns,
            "",
            r#"<drone-skydio:Latitude>40.710335</drone-skydio:Latitude>
               <drone-skydio:Longitude>-111.89434</drone-skydio:Longitude>
               <drone-skydio:AbsoluteAltitude>1034.441910</drone-skydio:AbsoluteAltitude>
               <drone-skydio:CameraOrientationNED rdf:parseType="Resource">
                 <drone-skydio:Pitch>-7.468572</drone-skydio:Pitch>
                 <drone-skydio:Roll>0.186841</drone-skydio:Roll>
                 <drone-skydio:Yaw>127.444323</drone-skydio:Yaw>
               </drone-skydio:CameraOrientationNED>
               <drone-skydio:CameraOrientationFLU rdf:parseType="Resource">
                 <drone-skydio:Pitch>99</drone-skydio:Pitch>
               </drone-skydio:CameraOrientationFLU>"#,
        );
        let attributes = packet(
            ns,
            r#"drone-skydio:Latitude="40.710335" drone-skydio:Longitude="-111.89434" drone-skydio:AbsoluteAltitude="1034.441910""#,
            r#"<drone-skydio:CameraOrientationNED drone-skydio:Pitch="-7.468572" drone-skydio:Roll="0.186841" drone-skydio:Yaw="127.444323"/>"#,
        );
        for xmp in [resource, attributes] {
            let x = read_str(&xmp);
            assert_eq!(x.gimbal.pitch, Some(-7.468572), "{xmp}");
            assert_eq!(x.gimbal.yaw, Some(127.444323));
            assert_eq!(x.gimbal.roll, Some(0.186841));
            assert_eq!(x.latitude, Some(40.710335));
            assert_eq!(x.longitude, Some(-111.89434));
            assert_eq!(x.absolute_altitude_m, Some(1034.44191));
            assert_eq!(x.attitude_source, Some("xmp-skydio"));
        }
    }

    #[test]
    fn pix4d_camera_pitch_is_zero_at_nadir() {
        let xmp = packet(
            r#"xmlns:Camera="http://pix4d.com/camera/1.0/""#,
            r#"Camera:Pitch="0.5" Camera:Yaw="-12.0" Camera:Roll="1.5""#,
            "",
        );
        let x = read_str(&xmp);
        assert_eq!(x.gimbal.pitch, Some(-89.5));
        assert_eq!(x.gimbal.yaw, Some(-12.0));
        assert_eq!(x.attitude_source, Some("xmp-camera"));
    }

    #[test]
    fn dji_wins_over_other_schemas_and_broken_xml_keeps_what_came_first() {
        let xmp = packet(
            r#"xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" xmlns:Camera="http://pix4d.com/camera/1.0/""#,
            r#"drone-dji:GimbalPitchDegree="-60" Camera:Pitch="0""#,
            "",
        );
        assert_eq!(read_str(&xmp).gimbal.pitch, Some(-60.0));
        let broken = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
            <rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" drone-dji:GimbalYawDegree="12.5">
            <drone-dji:RelativeAltitude>40</drone-dji:RelativeAltitude><oops"#;
        let x = read_str(broken);
        assert_eq!(x.gimbal.yaw, Some(12.5));
        assert_eq!(x.relative_altitude_m, Some(40.0));
    }

    #[test]
    fn numbers_accept_signs_and_rationals() {
        assert_eq!(number("+39.80"), Some(39.8));
        assert_eq!(number(" -89.9 "), Some(-89.9));
        assert_eq!(number("4001/100"), Some(40.01));
        assert_eq!(number("1/0"), None);
        assert_eq!(number("NaN"), None);
        assert_eq!(number("abc"), None);
    }
}
