"""One forecasting model over many series, with quantile forecasts, covariates and backtests."""

from .task import GlobalForecastTask

__all__ = ["GlobalForecastTask"]
