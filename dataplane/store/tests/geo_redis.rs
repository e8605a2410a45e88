//! Geo helpers against a real redis-server's answers (tests/data/geo_redis.txt, made by
//! tests/data/make_geo_vectors.sh): GEOADD scores, GEOHASH strings, and GEOSEARCH members
//! and distances, searched the way the server will search a sorted set.

use ember_store::geo::{
    decode, encode, geohash_string, search_ranges, within, DistanceUnit, Shape,
};

struct Point {
    name: String,
    score: u64,
}

fn parse_shape(words: &[&str]) -> Shape {
    let number = |text: &str| text.parse::<f64>().expect("a number");
    let unit = |text: &str| DistanceUnit::parse(text.as_bytes()).expect("a unit");
    match words {
        ["BYRADIUS", radius, unit_text] => Shape::Radius {
            radius: number(radius),
            unit: unit(unit_text),
        },
        ["BYBOX", width, height, unit_text] => Shape::Box {
            width: number(width),
            height: number(height),
            unit: unit(unit_text),
        },
        other => panic!("unknown shape {other:?}"),
    }
}

fn unit_of(shape: Shape) -> DistanceUnit {
    match shape {
        Shape::Radius { unit, .. } | Shape::Box { unit, .. } => unit,
    }
}

#[test]
fn same_scores_hashes_and_search_results() {
    let text = include_str!("data/geo_redis.txt");
    let mut points: Vec<Point> = Vec::new();
    let mut searches = 0;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "point" => {
                let (longitude, latitude) = (words[2].parse().unwrap(), words[3].parse().unwrap());
                let score = encode(longitude, latitude).unwrap();
                assert_eq!(score.to_string(), words[4], "score of {}", words[1]);
                assert_eq!(geohash_string(score), words[5], "hash of {}", words[1]);
                let (decoded_lon, decoded_lat) = decode(score);
                assert!(
                    (decoded_lon - longitude).abs() < 1e-5 && (decoded_lat - latitude).abs() < 1e-5
                );
                points.push(Point {
                    name: words[1].to_string(),
                    score,
                });
            }
            "search" => {
                searches += 1;
                let bar = words.iter().position(|&word| word == "|").expect("a bar");
                let (longitude, latitude): (f64, f64) =
                    (words[1].parse().unwrap(), words[2].parse().unwrap());
                let shape = parse_shape(&words[3..bar]);
                let expected: Vec<&str> = words[bar + 1..].to_vec();
                // The server's walk: each score range of the sorted set, then the shape filter.
                let ranges = search_ranges(longitude, latitude, shape);
                let mut found: Vec<(f64, &str)> = Vec::new();
                for &(min, max) in &ranges {
                    for point in points.iter().filter(|p| (min..max).contains(&p.score)) {
                        if let Some(distance_m) = within(longitude, latitude, shape, point.score) {
                            found.push((distance_m, point.name.as_str()));
                        }
                    }
                }
                found.sort_by(|a, b| a.0.total_cmp(&b.0));
                let meters = unit_of(shape).meters();
                let got: Vec<String> = found
                    .iter()
                    .map(|(distance, name)| format!("{name}:{:.4}", distance / meters))
                    .collect();
                assert_eq!(got, expected, "{line}");
            }
            other => panic!("unknown line kind {other}"),
        }
    }
    assert!(points.len() > 400 && searches >= 9);
}
