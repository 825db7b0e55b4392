#pragma once
// Umbrella for ssl/losses/ (filled in as components land).
