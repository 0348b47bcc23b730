//! The one feature engine, used online (`featurize`) and offline (`features`). Formulas: docs/features.md.
