"""What is learnt from data and from many runs: calibrate (fits in the forecast's terms),
backtest (the rolling-origin backtest), history (published figures beside the forecast),
sensitivity (Sobol' indices)."""
