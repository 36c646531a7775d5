"""Multi-step forecasting of one series, judged against seasonal-naive and ETS."""

from .task import ForecastTask

__all__ = ["ForecastTask"]
