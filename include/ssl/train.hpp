#pragma once
// Umbrella for ssl/train/ (filled in as components land).
