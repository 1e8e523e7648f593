//! `simsiam-convert`: PyTorch SimSiam head checkpoints ↔ `simsiam` parameter images.
//! The work is in the library (`simsiam_convert`); this is its command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use simsiam_convert::{ConvertError, Head, InputShape, KeyNames, Lang, Preset};

/// Converts trained SimSiam heads between PyTorch checkpoints and simsiam parameter images.
#[derive(Parser)]
#[command(name = "simsiam-convert", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reads a checkpoint (.pth, .pth.tar or .safetensors) and writes the head's image.
    Import {
        /// The head layout and its key names.
        #[arg(long, value_enum)]
        preset: Preset,
        #[command(flatten)]
        names: Names,
        /// har-dense, har-conv: the input's channels C (a sample is [C, T]).
        #[arg(long, default_value_t = 6)]
        channels: usize,
        /// har-dense, har-conv: the input's window length T.
        #[arg(long, default_value_t = 128)]
        window: usize,
        /// The checkpoint.
        checkpoint: PathBuf,
        /// The image to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Writes an image's head as .safetensors under the preset's PyTorch key names.
    Export {
        /// The head layout and its key names (the image must have its shape).
        #[arg(long, value_enum)]
        preset: Preset,
        #[command(flatten)]
        names: Names,
        /// The image.
        image: PathBuf,
        /// The .safetensors file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Runs an image's network in eval mode on the tensor `x` of a .safetensors file
    /// (F32, [N, D] or [N, C, T]); writes `encoder` (omitted for a head alone: its input
    /// is the encoder output), `projection` and `prediction` as .safetensors.
    Run {
        /// The image.
        image: PathBuf,
        /// The .safetensors file holding `x`.
        #[arg(long)]
        input: PathBuf,
        /// The .safetensors file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Describes an image: architecture, sizes, BatchNorm counters, checksum.
    Inspect {
        /// The image.
        image: PathBuf,
    },
    /// Writes C or Rust source that embeds an image, 64-byte aligned.
    Emit {
        /// The language.
        #[arg(long, value_enum)]
        lang: Lang,
        /// The array's name (default `simsiam_image` in C, `SIMSIAM_IMAGE` in Rust).
        #[arg(long)]
        name: Option<String>,
        /// The image.
        image: PathBuf,
        /// The source file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// Key-name options shared by `import` and `export`.
#[derive(Args)]
struct Names {
    /// Before every key [import default: `module.` if any key starts with it, else none;
    /// export default: `module.` for official, none otherwise]. `--prefix ''` for none.
    #[arg(long)]
    prefix: Option<String>,
    /// lightly: the projection head's key prefix.
    #[arg(long, default_value = "projection_head.")]
    projector_prefix: String,
    /// lightly: the prediction head's key prefix.
    #[arg(long, default_value = "prediction_head.")]
    predictor_prefix: String,
}

impl From<Names> for KeyNames {
    fn from(names: Names) -> Self {
        Self {
            prefix: names.prefix,
            projector_prefix: names.projector_prefix,
            predictor_prefix: names.predictor_prefix,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ConvertError> {
    std::fs::read(path).map_err(|source| ConvertError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ConvertError> {
    std::fs::write(path, bytes).map_err(|source| ConvertError::Io {
        path: path.to_owned(),
        source,
    })
}

fn run(command: Command) -> Result<(), ConvertError> {
    match command {
        Command::Import {
            preset,
            names,
            channels,
            window,
            checkpoint,
            output,
        } => {
            let checkpoint_data = simsiam_convert::Checkpoint::read(&checkpoint)?;
            let input = InputShape { channels, window };
            let head = Head::from_checkpoint_with(&checkpoint_data, preset, &names.into(), input)?;
            let image = head.to_image()?;
            write(&output, &image)?;
            println!(
                "{}: {preset} head, {} parameters, image {} bytes",
                output.display(),
                head.params.len(),
                image.len()
            );
        }
        Command::Export {
            preset,
            names,
            image,
            output,
        } => {
            let bytes = simsiam_convert::export(&read(&image)?, preset, &names.into())?;
            write(&output, &bytes)?;
            println!("{}: {preset} head, {} bytes", output.display(), bytes.len());
        }
        Command::Run {
            image,
            input,
            output,
        } => {
            let bytes = simsiam_convert::run(&read(&image)?, &input)?;
            write(&output, &bytes)?;
            println!("{}: eval outputs, {} bytes", output.display(), bytes.len());
        }
        Command::Inspect { image } => {
            print!("{}", simsiam_convert::inspect(&read(&image)?)?);
        }
        Command::Emit {
            lang,
            name,
            image,
            output,
        } => {
            let source = simsiam_convert::emit(&read(&image)?, lang, name.as_deref())?;
            write(&output, source.as_bytes())?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("simsiam-convert: error: {error}");
            ExitCode::FAILURE
        }
    }
}
