#pragma once
// Umbrella for ssl/encoders/ (filled in as components land).
