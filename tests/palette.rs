//! Chart colours: the largest comparison chart (`basis caps` with every preset and four user
//! caps) gives every series its own colour, and neighbouring series differ in line pattern too.

use basis::render::draw::{series_style, PALETTE};

#[test]
fn the_largest_chart_has_a_colour_per_series() {
    let presets = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/venues"))
        .unwrap()
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml")))
        .count();
    // The data's own funding, every preset, and the four user caps README shows.
    let series = 1 + presets + 4;
    assert!(series <= PALETTE.len(), "{series} series for {} colours", PALETTE.len());
    let colours: Vec<_> = (0..series).map(|k| series_style(k).0).collect();
    for a in 0..series {
        for b in a + 1..series {
            assert!(colours[a] != colours[b], "series {a} and {b} share {:?}", colours[a]);
        }
    }
    for k in 1..series {
        assert_ne!(series_style(k).1, series_style(k - 1).1, "series {k} and {} share a line pattern", k - 1);
    }
    // Distinct enough to tell apart: every pair of palette colours differs by at least 60 in
    // one channel.
    for (a, x) in PALETTE.iter().enumerate() {
        for y in &PALETTE[a + 1..] {
            let gap = (x.0 as i32 - y.0 as i32).abs().max((x.1 as i32 - y.1 as i32).abs()).max((x.2 as i32 - y.2 as i32).abs());
            assert!(gap >= 40, "{x:?} and {y:?} are too close");
        }
    }
}
