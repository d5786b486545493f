#pragma once
// The charts: PNG writer, bitmap font, axes and plots (scatter, lines, bars) for reports' figures.
// Presentation, kept out of the umbrella header <cpdiff/cpdiff.hpp>: include this one where you draw.
#include "cpdiff/report/axes.hpp"
#include "cpdiff/report/font.hpp"
#include "cpdiff/report/plot.hpp"
#include "cpdiff/report/png.hpp"
