"""Time-series forecasting: `spec` (its settings, torch-free), `task` (TASK), `data` (CSV
series, splits, backtests), `frames` (scaling and transforms), `model` (ForecastLSTM)."""
