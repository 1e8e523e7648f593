//! `simsiam::stream::WindowStream` fed HAPT's recordings sample by sample gives exactly the
//! windows `Hapt::windows` then `Windows::downsampled` cut (issue 22: the device's windows
//! are the host recipe's), bit for bit and in the same order.

use simsiam::stream::WindowStream;
use simsiam_hapt::{CHANNELS, Hapt, HaptError, Split, WindowSpec};

#[test]
fn streamed_windows_are_the_recipes_downsampled_windows() {
    let hapt = Hapt::load_committed().expect("the committed file decodes");
    for factor in [1, 4] {
        let want = hapt
            .windows(WindowSpec::RECIPE, Split::Test)
            .expect("spec")
            .downsampled(factor)
            .expect("factor");
        let len = WindowSpec::RECIPE.len / factor;
        let stride = WindowSpec::RECIPE.stride / factor;
        let mut storage = vec![0.0_f32; CHANNELS * (len + 1)];
        let mut window = vec![0.0_f32; CHANNELS * len];
        let mut got = 0;
        for recording in hapt.recordings() {
            if Split::of_subject(recording.subject()) != Split::Test {
                continue;
            }
            let mut stream =
                WindowStream::new(CHANNELS, len, stride, factor, &mut storage[..]).expect("sizes");
            for sample in recording.signals().chunks_exact(CHANNELS) {
                if stream.push(sample).expect("finite") {
                    stream.window_into(&mut window).expect("ready");
                    let expected = want.window(got).expect("no more streamed windows than cut");
                    assert!(
                        window
                            .iter()
                            .zip(expected)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "factor {factor}: window {got} differs"
                    );
                    got += 1;
                }
            }
        }
        assert_eq!(got, want.count(), "factor {factor}");
    }
}

#[test]
fn downsampling_factors_out_of_range_are_errors() {
    let hapt = Hapt::load_committed().expect("the committed file decodes");
    let test = hapt.windows(WindowSpec::RECIPE, Split::Test).expect("spec");
    assert_eq!(
        test.downsampled(0).err(),
        Some(HaptError::InvalidWindowSpec)
    );
    assert_eq!(
        test.downsampled(129).err(),
        Some(HaptError::InvalidWindowSpec)
    );
    let one = test.downsampled(128).expect("one sample a window");
    assert_eq!((one.window_len(), one.count()), (1, test.count()));
}
